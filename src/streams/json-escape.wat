;; UTF-8 bytes escaped for a JSON string, 16 bytes a step with SIMD (json-escape-wasm.ts).
;; The source of json-escape-wasm.generated.ts: `node scripts/build-wasm.mjs` assembles it
;; (wabt), and test/streams/json-escape-wasm.test.ts checks that the two agree.
;;
;; escape(at, end, out): writes at `out` what JSON.stringify writes between its quotes for the
;; text TextDecoder (fatal: false) decodes from memory[at, end), and answers where that ends.
;; Printable ASCII and valid UTF-8 are copied; `"`, `\` and the C0 controls are escaped as
;; JSON.stringify escapes them (a short escape where there is one, else \u00xx in lowercase);
;; each invalid UTF-8 sequence becomes one U+FFFD, for the bytes up to where it broke (WHATWG
;; Encoding, "UTF-8 decoder": the byte that broke it is read again). A sequence that `end` cuts
;; short counts as broken there. The output may take six times the input's length, and every
;; store may write up to 16 bytes past where the output ends; loads read up to 16 past `end`.
(module
  (memory (export "memory") 8)
  ;; For each byte below 0x60: the letter of its short escape (\b \t \n \f \r \" \\), or 0
  (data (i32.const 0x78000)
    "\00\00\00\00\00\00\00\00btn\00fr\00\00"
    "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00"
    "\00\00\22\00\00\00\00\00\00\00\00\00\00\00\00\00"
    "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00"
    "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00"
    "\00\00\00\00\00\00\00\00\00\00\00\00\5c\00\00\00")
  (func (export "escape") (param $at i32) (param $end i32) (param $out i32) (result i32)
    (local $v v128) (local $w v128) (local $n i32) (local $byte i32) (local $letter i32)
    (local $needed i32) (local $seen i32) (local $lower i32) (local $upper i32) (local $next i32)
    (block $done
      (loop $step
        ;; 32 bytes a step while none of them changes (copied as they are)
        (block $changes
          (loop $plain
            (br_if $changes (i32.gt_u (i32.add (local.get $at) (i32.const 32)) (local.get $end)))
            (local.set $v (v128.load align=1 (local.get $at)))
            (local.set $w (v128.load offset=16 align=1 (local.get $at)))
            (v128.store align=1 (local.get $out) (local.get $v))
            (v128.store offset=16 align=1 (local.get $out) (local.get $w))
            (br_if $changes
              (v128.any_true
                (v128.or
                  (v128.or
                    (v128.or
                      (i8x16.lt_s (local.get $v) (i8x16.splat (i32.const 0x20)))
                      (i8x16.eq (local.get $v) (i8x16.splat (i32.const 0x22))))
                    (i8x16.eq (local.get $v) (i8x16.splat (i32.const 0x5c))))
                  (v128.or
                    (v128.or
                      (i8x16.lt_s (local.get $w) (i8x16.splat (i32.const 0x20)))
                      (i8x16.eq (local.get $w) (i8x16.splat (i32.const 0x22))))
                    (i8x16.eq (local.get $w) (i8x16.splat (i32.const 0x5c)))))))
            (local.set $at (i32.add (local.get $at) (i32.const 32)))
            (local.set $out (i32.add (local.get $out) (i32.const 32)))
            (br $plain)))
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        ;; Copied as they are, then the bytes before the first one that changes are kept: a
        ;; signed `lt 0x20` finds the controls and every byte of 0x80 and above
        (local.set $v (v128.load align=1 (local.get $at)))
        (v128.store align=1 (local.get $out) (local.get $v))
        (local.set $n
          (i32.ctz
            (i32.or
              (i8x16.bitmask
                (v128.or
                  (v128.or
                    (i8x16.lt_s (local.get $v) (i8x16.splat (i32.const 0x20)))
                    (i8x16.eq (local.get $v) (i8x16.splat (i32.const 0x22))))
                  (i8x16.eq (local.get $v) (i8x16.splat (i32.const 0x5c)))))
              (i32.const 0x10000))))
        ;; No further than `end`
        (if (i32.gt_u (local.get $n) (i32.sub (local.get $end) (local.get $at)))
          (then (local.set $n (i32.sub (local.get $end) (local.get $at)))))
        (local.set $at (i32.add (local.get $at) (local.get $n)))
        (local.set $out (i32.add (local.get $out) (local.get $n)))
        (br_if $step (i32.eq (local.get $n) (i32.const 16)))
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $byte (i32.load8_u (local.get $at)))
        (if (i32.lt_u (local.get $byte) (i32.const 0x80))
          (then
            (local.set $letter (i32.load8_u offset=0x78000 (local.get $byte)))
            (if (local.get $letter)
              (then
                (i32.store16 align=1 (local.get $out)
                  (i32.or (i32.const 0x5c) (i32.shl (local.get $letter) (i32.const 8))))
                (local.set $out (i32.add (local.get $out) (i32.const 2))))
              (else
                ;; \u00 then two hex digits: the high one is 0 or 1 below 0x20
                (i32.store align=1 (local.get $out) (i32.const 0x3030755c))
                (i32.store8 offset=4 (local.get $out)
                  (i32.add (i32.const 0x30) (i32.shr_u (local.get $byte) (i32.const 4))))
                (local.set $n (i32.and (local.get $byte) (i32.const 15)))
                (i32.store8 offset=5 (local.get $out)
                  (i32.add (local.get $n)
                    (select (i32.const 0x30) (i32.const 0x57)
                      (i32.lt_u (local.get $n) (i32.const 10)))))
                (local.set $out (i32.add (local.get $out) (i32.const 6)))))
            (local.set $at (i32.add (local.get $at) (i32.const 1)))
            (br $step)))
        ;; A byte of 0x80 and above: how many continuation bytes its lead asks for, and the
        ;; range of the first (no overlong forms, no surrogates, nothing above U+10FFFF)
        (local.set $needed (i32.const 0))
        (local.set $lower (i32.const 0x80))
        (local.set $upper (i32.const 0xbf))
        (if (i32.and (i32.ge_u (local.get $byte) (i32.const 0xc2))
                     (i32.le_u (local.get $byte) (i32.const 0xdf)))
          (then (local.set $needed (i32.const 1))))
        (if (i32.and (i32.ge_u (local.get $byte) (i32.const 0xe0))
                     (i32.le_u (local.get $byte) (i32.const 0xef)))
          (then
            (local.set $needed (i32.const 2))
            (if (i32.eq (local.get $byte) (i32.const 0xe0))
              (then (local.set $lower (i32.const 0xa0))))
            (if (i32.eq (local.get $byte) (i32.const 0xed))
              (then (local.set $upper (i32.const 0x9f))))))
        (if (i32.and (i32.ge_u (local.get $byte) (i32.const 0xf0))
                     (i32.le_u (local.get $byte) (i32.const 0xf4)))
          (then
            (local.set $needed (i32.const 3))
            (if (i32.eq (local.get $byte) (i32.const 0xf0))
              (then (local.set $lower (i32.const 0x90))))
            (if (i32.eq (local.get $byte) (i32.const 0xf4))
              (then (local.set $upper (i32.const 0x8f))))))
        (local.set $seen (i32.const 1))
        (block $broken
          (br_if $broken (i32.eqz (local.get $needed)))
          (loop $continuation
            (br_if $broken
              (i32.ge_u (i32.add (local.get $at) (local.get $seen)) (local.get $end)))
            (local.set $next (i32.load8_u (i32.add (local.get $at) (local.get $seen))))
            (br_if $broken
              (i32.or (i32.lt_u (local.get $next) (local.get $lower))
                      (i32.gt_u (local.get $next) (local.get $upper))))
            (local.set $lower (i32.const 0x80))
            (local.set $upper (i32.const 0xbf))
            (local.set $seen (i32.add (local.get $seen) (i32.const 1)))
            (br_if $continuation (i32.le_u (local.get $seen) (local.get $needed))))
          ;; Valid: copied (four bytes stored, as many kept as the character has)
          (i32.store align=1 (local.get $out) (i32.load align=1 (local.get $at)))
          (local.set $out (i32.add (local.get $out) (local.get $seen)))
          (local.set $at (i32.add (local.get $at) (local.get $seen)))
          (br $step))
        ;; Broken after `seen` bytes: one U+FFFD for them
        (i32.store16 align=1 (local.get $out) (i32.const 0xbfef))
        (i32.store8 offset=2 (local.get $out) (i32.const 0xbd))
        (local.set $out (i32.add (local.get $out) (i32.const 3)))
        (local.set $at (i32.add (local.get $at) (local.get $seen)))
        (br $step)))
    (local.get $out)))
