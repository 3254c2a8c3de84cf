//! FarmHash `Fingerprint64`, as used by TensorFlow's `tf.strings.to_hash_bucket_fast`
//! and therefore by Keras's `Hashing` layer (TF backend, no salt):
//! `bucket = fingerprint64(utf8_bytes) % num_bins`.
//!
//! Pure-Rust port of `farmhashna::Hash64` (which is what `util::Fingerprint64` calls)
//! from FarmHash by Google, <https://github.com/google/farmhash>, `src/farmhash.cc`
//! (commit 0d859a811870d10f53a594927d0d0b97573ad06d).
//! FarmHash is Copyright (c) 2014 Google, Inc. and distributed under the MIT license;
//! this port follows that code line by line and keeps its structure and names.
//! Fingerprints are platform-independent: all loads are little-endian.

const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;

#[inline]
fn fetch64(s: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(b)
}

#[inline]
fn fetch32(s: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&s[i..i + 4]);
    u64::from(u32::from_le_bytes(b))
}

#[inline]
fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

#[inline]
fn hash_len16(u: u64, v: u64, mul: u64) -> u64 {
    let mut a = (u ^ v).wrapping_mul(mul);
    a ^= a >> 47;
    let mut b = (v ^ a).wrapping_mul(mul);
    b ^= b >> 47;
    b.wrapping_mul(mul)
}

fn hash_len0to16(s: &[u8]) -> u64 {
    let len = s.len();
    let len64 = len as u64;
    if len >= 8 {
        let mul = K2.wrapping_add(len64.wrapping_mul(2));
        let a = fetch64(s, 0).wrapping_add(K2);
        let b = fetch64(s, len - 8);
        let c = b.rotate_right(37).wrapping_mul(mul).wrapping_add(a);
        let d = a.rotate_right(25).wrapping_add(b).wrapping_mul(mul);
        return hash_len16(c, d, mul);
    }
    if len >= 4 {
        let mul = K2.wrapping_add(len64.wrapping_mul(2));
        let a = fetch32(s, 0);
        return hash_len16(len64.wrapping_add(a << 3), fetch32(s, len - 4), mul);
    }
    if len > 0 {
        let a = u32::from(s[0]);
        let b = u32::from(s[len >> 1]);
        let c = u32::from(s[len - 1]);
        // In C++ these are uint32_t; the shifts cannot overflow 32 bits here.
        let y = a.wrapping_add(b << 8);
        let z = (len as u32).wrapping_add(c << 2);
        return shift_mix(u64::from(y).wrapping_mul(K2) ^ u64::from(z).wrapping_mul(K0)).wrapping_mul(K2);
    }
    K2
}

fn hash_len17to32(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add((len as u64).wrapping_mul(2));
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    hash_len16(
        a.wrapping_add(b).rotate_right(43).wrapping_add(c.rotate_right(30)).wrapping_add(d),
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18)).wrapping_add(c),
        mul,
    )
}

/// Returns a 16-byte hash for 48 bytes (`w`, `x`, `y`, `z` plus seeds `a`, `b`).
#[inline]
fn weak_hash_len32_with_seeds_words(w: u64, x: u64, y: u64, z: u64, mut a: u64, mut b: u64) -> (u64, u64) {
    a = a.wrapping_add(w);
    b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    a = a.wrapping_add(x);
    a = a.wrapping_add(y);
    b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

/// Returns a 16-byte hash for `s[i..i + 32]`, `a` and `b`.
#[inline]
fn weak_hash_len32_with_seeds(s: &[u8], i: usize, a: u64, b: u64) -> (u64, u64) {
    weak_hash_len32_with_seeds_words(fetch64(s, i), fetch64(s, i + 8), fetch64(s, i + 16), fetch64(s, i + 24), a, b)
}

fn hash_len33to64(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add((len as u64).wrapping_mul(2));
    let a = fetch64(s, 0).wrapping_mul(K2);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    let y = a.wrapping_add(b).rotate_right(43).wrapping_add(c.rotate_right(30)).wrapping_add(d);
    let z = hash_len16(y, a.wrapping_add(b.wrapping_add(K2).rotate_right(18)).wrapping_add(c), mul);
    let e = fetch64(s, 16).wrapping_mul(mul);
    let f = fetch64(s, 24);
    let g = y.wrapping_add(fetch64(s, len - 32)).wrapping_mul(mul);
    let h = z.wrapping_add(fetch64(s, len - 24)).wrapping_mul(mul);
    hash_len16(
        e.wrapping_add(f).rotate_right(43).wrapping_add(g.rotate_right(30)).wrapping_add(h),
        e.wrapping_add(f.wrapping_add(a).rotate_right(18)).wrapping_add(g),
        mul,
    )
}

/// FarmHash `Fingerprint64` (= `farmhashna::Hash64`) of `s`.
///
/// Matches TensorFlow's `Fingerprint64`, so `fingerprint64(s.as_bytes()) % n` equals
/// `tf.strings.to_hash_bucket_fast([s], n)` and Keras `Hashing(num_bins=n)` on strings.
pub fn fingerprint64(s: &[u8]) -> u64 {
    const SEED: u64 = 81;
    let len = s.len();
    if len <= 32 {
        if len <= 16 {
            return hash_len0to16(s);
        }
        return hash_len17to32(s);
    } else if len <= 64 {
        return hash_len33to64(s);
    }

    // For strings over 64 bytes we loop. Internal state consists of
    // 56 bytes: v, w, x, y, and z.
    let mut x = SEED;
    let mut y = SEED.wrapping_mul(K1).wrapping_add(113);
    let mut z = shift_mix(y.wrapping_mul(K2).wrapping_add(113)).wrapping_mul(K2);
    let mut v: (u64, u64) = (0, 0);
    let mut w: (u64, u64) = (0, 0);
    x = x.wrapping_mul(K2).wrapping_add(fetch64(s, 0));

    // Set end so that after the loop we have 1 to 64 bytes left to process.
    let end = ((len - 1) / 64) * 64;
    let last64 = len - 64;
    let mut p = 0usize;
    loop {
        x = x.wrapping_add(y).wrapping_add(v.0).wrapping_add(fetch64(s, p + 8)).rotate_right(37).wrapping_mul(K1);
        y = y.wrapping_add(v.1).wrapping_add(fetch64(s, p + 48)).rotate_right(42).wrapping_mul(K1);
        x ^= w.1;
        y = y.wrapping_add(v.0).wrapping_add(fetch64(s, p + 40));
        z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(K1);
        v = weak_hash_len32_with_seeds(s, p, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_len32_with_seeds(s, p + 32, z.wrapping_add(w.1), y.wrapping_add(fetch64(s, p + 16)));
        std::mem::swap(&mut z, &mut x);
        p += 64;
        if p == end {
            break;
        }
    }
    let mul = K1.wrapping_add((z & 0xff) << 1);
    // Make p point to the last 64 bytes of input.
    p = last64;
    w.0 = w.0.wrapping_add(((len - 1) & 63) as u64);
    v.0 = v.0.wrapping_add(w.0);
    w.0 = w.0.wrapping_add(v.0);
    x = x.wrapping_add(y).wrapping_add(v.0).wrapping_add(fetch64(s, p + 8)).rotate_right(37).wrapping_mul(mul);
    y = y.wrapping_add(v.1).wrapping_add(fetch64(s, p + 48)).rotate_right(42).wrapping_mul(mul);
    x ^= w.1.wrapping_mul(9);
    y = y.wrapping_add(v.0.wrapping_mul(9)).wrapping_add(fetch64(s, p + 40));
    z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(mul);
    v = weak_hash_len32_with_seeds(s, p, v.1.wrapping_mul(mul), x.wrapping_add(w.0));
    w = weak_hash_len32_with_seeds(s, p + 32, z.wrapping_add(w.1), y.wrapping_add(fetch64(s, p + 16)));
    std::mem::swap(&mut z, &mut x);
    hash_len16(hash_len16(v.0, w.0, mul).wrapping_add(shift_mix(y).wrapping_mul(K0)).wrapping_add(z), hash_len16(v.1, w.1, mul).wrapping_add(x), mul)
}

#[cfg(test)]
mod tests {
    use super::fingerprint64;

    // Expected values were produced with pyfarmhash 0.5.1 (`farmhash.fingerprint64`,
    // which wraps Google's C++ farmhash) and cross-checked against TensorFlow 2.21
    // `tf.strings.to_hash_bucket_fast` (bucket == fingerprint64 % n for 13 values of n).

    /// Deterministic, non-ASCII-heavy test input: byte i is (i * 31 + 7) % 251.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
    }

    /// (length, fingerprint64(pattern(length)))
    const PATTERN: &[(usize, u64)] = &[
        (0, 11160318154034397263),
        (1, 6305636504242451570),
        (2, 172658089014669113),
        (3, 6846658912458629505),
        (4, 15920609078983942396),
        (5, 14022352984523573845),
        (6, 2328958690118165844),
        (7, 6078383079216981503),
        (8, 15079902322784532122),
        (9, 4376853727175287840),
        (10, 9233456757115875447),
        (11, 1498044694502706885),
        (12, 9786278215519414811),
        (13, 11069127365829495506),
        (14, 6720339740900332227),
        (15, 8871609855068474496),
        (16, 17076568387257278355),
        (17, 7418804892319297478),
        (18, 3718841482635050001),
        (23, 18333608616057567535),
        (24, 5344350835753463355),
        (25, 4276958208055670345),
        (31, 16702078477606977910),
        (32, 582683489103172486),
        (33, 1072928522818970108),
        (40, 15259197171687979810),
        (47, 7385021991159076532),
        (48, 4511257955736116064),
        (49, 11090843657483600313),
        (56, 8438041224606021144),
        (63, 16045880284121655567),
        (64, 7240171158262197935),
        (65, 5657966536927318432),
        (66, 12306982403180987701),
        (100, 1325671559767392739),
        (127, 8569154283454603577),
        (128, 3713188649558406716),
        (129, 1491411452700441556),
        (130, 5886925256047790386),
        (191, 5355212264321022320),
        (192, 11098240047834619686),
        (193, 3627263785957976470),
        (200, 5341905616176888759),
        (255, 9907169399431995147),
        (256, 12818879286634187513),
        (257, 12681703573140254750),
        (1000, 4305698059241039725),
        (4096, 17894138889792482833),
    ];

    /// (string, fingerprint64(UTF-8 bytes))
    const STRINGS: &[(&str, u64)] = &[
        ("", 11160318154034397263),
        ("a", 12917804110809363939),
        ("ab", 12289600257749001502),
        ("abc", 2640714258260161385),
        ("hello", 13009744463427800296),
        ("hello world", 6381520714923946011),
        ("The quick brown fox jumps over the lazy dog", 12375473906752639284),
        ("café", 11379377682866355587),
        ("naïve", 11018684814441883233),
        ("日本語", 15681232226066675783),
        ("Grüße aus Köln 🙂", 15686016114743612507),
        ("🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂", 11578163719133402708),
    ];

    /// (unit, repeat count, fingerprint64(unit.repeat(count)))
    const REPEATED: &[(&str, usize, u64)] = &[("🙂", 20, 11578163719133402708), ("ü", 50, 4858842689510399570), ("ascii-", 30, 5625480528760162887)];

    /// (string, num_buckets, tf.strings.to_hash_bucket_fast([string], num_buckets)) from TensorFlow 2.21.
    const TF_BUCKETS: &[(&str, u64, u64)] = &[
        ("", 10, 3),
        ("a", 10, 9),
        ("café", 1000, 587),
        ("hello world", 97, 17),
        ("The quick brown fox jumps over the lazy dog", 2147483647, 311974173),
        ("日本語", 3, 2),
        ("a", 9223372036854775807, 3694432073954588132),
    ];

    #[test]
    fn empty_is_k2() {
        assert_eq!(fingerprint64(b""), 0x9ae1_6a3b_2f90_404f);
    }

    #[test]
    fn pattern_vectors_all_lengths() {
        for &(len, want) in PATTERN {
            assert_eq!(fingerprint64(&pattern(len)), want, "pattern length {len}");
        }
    }

    #[test]
    fn string_vectors() {
        for &(s, want) in STRINGS {
            assert_eq!(fingerprint64(s.as_bytes()), want, "string {s:?}");
        }
        for &(unit, n, want) in REPEATED {
            let s = unit.repeat(n);
            assert_eq!(fingerprint64(s.as_bytes()), want, "{unit:?} x {n} ({} bytes)", s.len());
        }
    }

    #[test]
    fn tf_to_hash_bucket_fast_vectors() {
        for &(s, n, want) in TF_BUCKETS {
            assert_eq!(fingerprint64(s.as_bytes()) % n, want, "string {s:?} mod {n}");
        }
        assert_eq!(fingerprint64("🙂".repeat(20).as_bytes()) % 1_048_576, 202_324);
        assert_eq!(fingerprint64("x".repeat(100).as_bytes()) % 1_000_003, 107_918);
    }

    #[test]
    fn prefix_slices_of_larger_buffer() {
        // Hashing a sub-slice must depend only on the bytes inside it.
        let big = pattern(5000);
        for &(len, want) in PATTERN {
            assert_eq!(fingerprint64(&big[..len]), want, "prefix length {len}");
        }
    }
}
