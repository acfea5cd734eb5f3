//! LZF compression (the format Redis writes compressed strings and quicklist nodes in), with
//! a hash table sized to the input.
//!
//! The `lzf` crate's compressor zeroes a 512 KiB table on every call: for the many small
//! values of a snapshot that memset was three quarters of SAVE's time. The format does not
//! depend on the table, so this greedy compressor hashes into a table of about the input's
//! size (256 to 65,536 entries). Decompression stays with the `lzf` crate.
//!
//! Format: a control byte below 32 starts a run of (byte + 1) literals; otherwise its top
//! three bits are a match length minus 2 (7: one more byte adds to it) and its low five
//! bits, with the next byte, the distance back minus 1.

/// The longest literal run one control byte announces.
const MAX_LITERALS: usize = 32;
/// The farthest a match may start behind the current position.
const MAX_DISTANCE: usize = 1 << 13;
/// The longest match: 2 + 7 + 255.
const MAX_MATCH: usize = 264;

/// `input` in LZF form, or None when that form would not be shorter.
pub fn compress(input: &[u8]) -> Option<Vec<u8>> {
    let n = input.len();
    if n < 4 {
        return None;
    }
    let bits = (usize::BITS - (n - 1).leading_zeros()).clamp(8, 16);
    // Position + 1 of the last place each 3-byte hash was seen (0: never).
    let mut table = vec![0u32; 1 << bits];
    let mut out = Vec::with_capacity(n);
    let mut literals_from = 0;
    let mut i = 0;
    while i + 2 < n {
        let three = [input[i], input[i + 1], input[i + 2]];
        let slot = hash(three, bits);
        let seen = table[slot] as usize;
        table[slot] = (i + 1) as u32;
        if seen > 0 && i - (seen - 1) <= MAX_DISTANCE && input[seen - 1..seen + 2] == three {
            let from = seen - 1;
            let longest = (n - i).min(MAX_MATCH);
            let mut len = 3;
            while len < longest && input[from + len] == input[i + len] {
                len += 1;
            }
            push_literals(&mut out, &input[literals_from..i]);
            let distance = i - from - 1;
            let code = len - 2;
            let high = (distance >> 8) as u8;
            if code < 7 {
                out.push(((code as u8) << 5) | high);
            } else {
                out.push((7 << 5) | high);
                out.push((code - 7) as u8);
            }
            out.push(distance as u8);
            i += len;
            literals_from = i;
            if out.len() >= n {
                return None;
            }
        } else {
            i += 1;
        }
    }
    push_literals(&mut out, &input[literals_from..]);
    (out.len() < n).then_some(out)
}

fn hash(three: [u8; 3], bits: u32) -> usize {
    let v = u32::from_be_bytes([0, three[0], three[1], three[2]]);
    (v.wrapping_mul(2_654_435_761) >> (32 - bits)) as usize
}

fn push_literals(out: &mut Vec<u8>, literals: &[u8]) {
    for run in literals.chunks(MAX_LITERALS) {
        out.push((run.len() - 1) as u8);
        out.extend_from_slice(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &[u8]) {
        if let Some(c) = compress(input) {
            assert!(c.len() < input.len());
            let back = lzf::decompress(&c, input.len()).expect("decompresses");
            assert_eq!(back, input);
        }
    }

    #[test]
    fn compressible_inputs_round_trip_through_the_reference_decoder() {
        round_trip(&[b'a'; 1000]);
        round_trip(&[0; 70_000]);
        round_trip(b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc");
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("field:{} ", i % 700).into_bytes())
            .collect();
        round_trip(&text);
        assert!(compress(&text).expect("compresses").len() < text.len() / 3);
        // Repeats farther back than a match may reach, and runs longer than one match.
        let mut far: Vec<u8> = (0..9000u32)
            .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
            .collect();
        far.extend_from_within(0..600);
        round_trip(&far);
    }

    #[test]
    fn random_inputs_round_trip_or_are_refused() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for size in [0usize, 1, 3, 4, 5, 31, 32, 33, 100, 255, 4096, 10_000] {
            for alphabet in [2u64, 4, 256] {
                let input: Vec<u8> = (0..size)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state % alphabet) as u8
                    })
                    .collect();
                round_trip(&input);
            }
        }
        assert_eq!(compress(b"abc"), None);
        assert_eq!(compress(&[1, 2, 3, 4, 5, 6, 7, 8]), None);
    }
}
