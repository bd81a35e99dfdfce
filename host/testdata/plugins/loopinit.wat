;; Hostile test plugin: loops forever in eventpipe_init (load must have a deadline).
(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{\"name\":\"loopinit\",\"version\":\"1.0.0\",\"kind\":\"filter\",\"capabilities\":[]}")
  (func (export "eventpipe_abi_v1") (result i32) (i32.const 1))
  (func (export "eventpipe_manifest") (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 71)))
  ;; The buffer starts at 4096; memory grows so that 4096 + 2*size bytes fit
  ;; (the input, then room for the output after it).
  (func (export "eventpipe_buffer") (param $size i32) (result i32)
    (local $need i32) (local $have i32)
    (local.set $need (i32.add (i32.const 4096) (i32.shl (local.get $size) (i32.const 1))))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $need) (local.get $have)) (i32.const 65535)) (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 4096))
  (func (export "eventpipe_init") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 0))
  (func (export "eventpipe_process") (param $p i32) (param $len i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0))
)
