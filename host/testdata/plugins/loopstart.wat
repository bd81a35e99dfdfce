;; Hostile test plugin: its start function never returns (load must have a deadline).
(module
  (memory (export "memory") 1)
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "eventpipe_abi_v1") (result i32) (i32.const 1))
)
