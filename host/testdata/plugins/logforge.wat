;; Hostile test plugin: logs from its start function (before its manifest is
;; checked), then on every batch a text that forges a log line and clears
;; the terminal, 5000 bytes long; and adds to a metric with a forged name.
(module
  (import "eventpipe" "log" (func $log (param i32 i32 i32)))
  (import "eventpipe" "metric_add" (func $metric (param i32 i32 i64)))
  (func $early (call $log (i32.const 1) (i32.const 3000) (i32.const 5)))
  (start $early)
  (memory (export "memory") 1)
  (data (i32.const 1024) "{\"name\":\"logforge\",\"version\":\"1.0.0\",\"kind\":\"filter\",\"capabilities\":[\"log\",\"metrics\"]}")
  (func (export "eventpipe_abi_v1") (result i32) (i32.const 1))
  (func (export "eventpipe_manifest") (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 86)))
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
    (call $log (i32.const 1) (i32.const 2048) (i32.const 5000))
    (call $metric (i32.const 2048) (i32.const 20) (i64.const 1))
    (memory.fill (i32.add (local.get $p) (local.get $len)) (i32.const 0) (i32.load offset=4 (local.get $p)))
    (i64.or (i64.shl (i64.extend_i32_u (i32.add (local.get $p) (local.get $len))) (i64.const 32))
            (i64.extend_i32_u (i32.load offset=4 (local.get $p)))))
  (data (i32.const 2048) "ok\0a\1b[2Jtime=2026-01-01T00:00:00Z level=INFO msg=\"eventpipe: stored 0, exported 999\"\0a")
  (data (i32.const 3000) "early")
)
