;; Test plugin: a transform that returns its input as it is, so that a
;; benchmark measures what a transform costs the host (encoding the batch,
;; reading the output back and comparing it with the events).
(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{\"name\":\"identity\",\"version\":\"1.0.0\",\"kind\":\"transform\",\"capabilities\":[]}")
  (func (export "eventpipe_abi_v1") (result i32) (i32.const 1))
  (func (export "eventpipe_manifest") (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 74)))
  ;; The buffer starts at 4096; memory grows so that 4096 + size bytes fit.
  (func (export "eventpipe_buffer") (param $size i32) (result i32)
    (local $need i32) (local $have i32)
    (local.set $need (i32.add (i32.const 4096) (local.get $size)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $need) (local.get $have)) (i32.const 65535)) (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 4096))
  (func (export "eventpipe_init") (param i32 i32) (result i32) (i32.const 0))
  ;; The output is the input: (p << 32) | len.
  (func (export "eventpipe_process") (param $p i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
)
