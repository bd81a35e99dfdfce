;; Hostile test plugin: has no ABI marker.
(module (memory (export "memory") 1) (func (export "eventpipe_process") (param i32 i32) (result i64) (i64.const 0)))
