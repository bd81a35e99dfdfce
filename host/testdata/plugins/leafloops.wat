;; Test module for the metering of leaf loops (host/fuel.go): loops that
;; neither call nor hold a loop are wrapped so that their yield sits outside
;; them, and branches that leave them are renumbered. Each function is run
;; metered and unmetered by fuel_test.go and must give the same result.
(module
  (memory (export "memory") 1)
  ;; 0 + 1 + ... + (n-1): the plainest leaf loop.
  (func (export "sum") (param $n i32) (result i32)
    (local $i i32) (local $s i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $s (i32.add (local.get $s) (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $s))
  ;; Leaves the loop from inside a nested block and an if, past the
  ;; function's outer block, with a value.
  (func (export "brout") (param $n i32) (result i32)
    (local $i i32)
    (block $out (result i32)
      (block $never
        (loop $next
          (block $inner
            (if (i32.eq (local.get $i) (i32.const 7))
              (then (br $out (i32.mul (local.get $i) (i32.const 100)))))
            (br_if $inner (i32.and (local.get $i) (i32.const 1))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $next (i32.lt_u (local.get $i) (local.get $n)))))
      (i32.sub (i32.const 0) (local.get $i))))
  ;; br_table whose labels are an inner block, the loop, and blocks outside.
  (func (export "table") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $exit
      (block $skip
        (loop $next
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (block $odd
            (br_table $odd $next $skip $exit (i32.rem_u (local.get $i) (i32.const 4))))
          (local.set $acc (i32.add (local.get $acc) (local.get $i)))
          (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
        (return (i32.const -1)))
      (local.set $acc (i32.add (local.get $acc) (i32.const 1000))))
    (i32.add (local.get $acc) (i32.mul (local.get $i) (i32.const 10000))))
  ;; return from inside a leaf loop.
  (func (export "ret") (param $n i32) (result i32)
    (local $i i32)
    (loop $next
      (if (i32.ge_u (local.get $i) (local.get $n))
        (then (return (i32.add (local.get $i) (i32.const 5)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))
    (i32.const -2))
  ;; A leaf loop inside a loop that calls: only the inner one is a leaf.
  (func $twice (param $x i32) (result i32) (i32.shl (local.get $x) (i32.const 1)))
  (func (export "nested") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $s i32)
    (block $done
      (loop $outer
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $inner_done
          (loop $inner
            (br_if $inner_done (i32.ge_u (local.get $j) (local.get $i)))
            (local.set $s (i32.add (local.get $s) (local.get $j)))
            (br_if $done (i32.gt_u (local.get $s) (i32.const 1000000)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $inner)))
        (local.set $s (call $twice (local.get $s)))
        (local.set $s (i32.and (local.get $s) (i32.const 0xffff)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.get $s))
  ;; A loop with a result type is metered the plain way.
  (func (export "typed") (param $n i32) (result i32)
    (local $i i32)
    (loop $next (result i32)
      (local.set $i (i32.add (local.get $i) (i32.const 3)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n)))
      (local.get $i)))
)
