;; Test plugin: the reference filter without its per-byte work, so that a
;; benchmark measures the host's overhead: the guest only walks the records.
;; It reads type and source only, and its manifest says so (reads): the host
;; leaves the other fields empty.
(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{\"name\":\"walk\",\"version\":\"1.0.0\",\"kind\":\"filter\",\"capabilities\":[],\"reads\":[\"type\",\"source\"]}")
  (func (export "eventpipe_abi_v1") (result i32) (i32.const 1))
  (func (export "eventpipe_manifest") (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 93)))
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
  ;; One call per batch: walk the records, write one verdict byte per event
  ;; after the input, return (out << 32) | count.
  ;;   source is "evil" -> 2 (dead-letter); else type ends with ".debug" -> 1 (drop);
  ;;   else FNV-1a (32-bit) of data modulo 7 is 0 -> 1 (drop); else 0 (keep).
  (func (export "eventpipe_process") (param $p i32) (param $len i32) (result i64)
    (local $count i32) (local $i i32) (local $rec i32) (local $out i32)
    (local $tlen i32) (local $slen i32) (local $t i32) (local $v i32)
    (local.set $count (i32.load offset=4 (local.get $p)))
    (local.set $out (i32.add (local.get $p) (local.get $len)))
    (local.set $rec (i32.add (local.get $p) (i32.const 8)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $tlen (i32.load16_u offset=20 (local.get $rec)))
        (local.set $slen (i32.load16_u offset=22 (local.get $rec)))
        (local.set $t (i32.add (local.get $rec) (i32.const 40)))
        (local.set $v (i32.const 0))
        (if (i32.ge_u (local.get $tlen) (i32.const 6))
          (then
            (if (call $is_debug (i32.sub (i32.add (local.get $t) (local.get $tlen)) (i32.const 6)))
              (then (local.set $v (i32.const 1))))))
        (if (i32.eq (local.get $slen) (i32.const 4))
          (then
            (if (i32.eq (i32.load (i32.add (local.get $t) (local.get $tlen))) (i32.const 0x6c697665)) ;; "evil"
              (then (local.set $v (i32.const 2))))))
        (i32.store8 (i32.add (local.get $out) (local.get $i)) (local.get $v))
        (local.set $rec (i32.add (local.get $rec) (i32.load (local.get $rec))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32)) (i64.extend_i32_u (local.get $count))))
  ;; FNV-1a (32-bit) of the record's data: it ends the record, data_len bytes long.
  (func $fnv (param $rec i32) (result i32)
    (local $h i32) (local $q i32) (local $end i32)
    (local.set $end (i32.add (local.get $rec) (i32.load (local.get $rec))))
    (local.set $q (i32.sub (local.get $end) (i32.load offset=36 (local.get $rec))))
    (local.set $h (i32.const 0x811c9dc5))
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
        (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load8_u (local.get $q))) (i32.const 0x01000193)))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $byte)))
    (local.get $h))
  ;; the 6 bytes at $a are ".debug"
  (func $is_debug (param $a i32) (result i32)
    (i32.and
      (i32.eq (i32.load (local.get $a)) (i32.const 0x6265642e))            ;; ".deb"
      (i32.eq (i32.load16_u offset=4 (local.get $a)) (i32.const 0x6775))))  ;; "ug"
)
