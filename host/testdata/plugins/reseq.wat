;; Hostile test plugin: a transform that sets every event's sequence (host-owned) to 999.
(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{\"name\":\"reseq\",\"version\":\"1.0.0\",\"kind\":\"transform\",\"capabilities\":[]}")
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
  (func (export "eventpipe_init") (param i32 i32) (result i32) (i32.const 0))
  (func (export "eventpipe_process") (param $p i32) (param $len i32) (result i64)
    (local $out i32) (local $o i32) (local $end i32)
    (local.set $out (i32.add (local.get $p) (local.get $len)))
    (memory.copy (local.get $out) (local.get $p) (local.get $len))
    (local.set $o (i32.add (local.get $out) (i32.const 8)))
    (local.set $end (i32.add (local.get $out) (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (i64.store offset=12 (local.get $o) (i64.const 999))
        (local.set $o (i32.add (local.get $o) (i32.load (local.get $o))))
        (br $next)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
)
