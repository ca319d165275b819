//! Hostile inputs for the protocol crates' decoder tests: every truncation
//! of a valid message, random mutations of it (bytes flipped or replaced
//! with the values that mean something on the wire, inserted, removed,
//! cut) and random noise. Deterministic, from a fixed seed, so that a
//! failure reproduces. Test support, kept here because both protocol crates
//! use it and neither may depend on the other.

/// xorshift64*: small and fixed; good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four mutations of `sample`; `markers` are the byte values with
/// a meaning on the wire (length prefixes, NULL markers, terminators).
fn mutate(rng: &mut Rng, sample: &[u8], markers: &[u8]) -> Vec<u8> {
    let mut v = sample.to_vec();
    let marker = |rng: &mut Rng| markers[rng.below(markers.len())];
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 => v.truncate(at),
            1 if at < v.len() => v[at] = rng.next() as u8,
            2 if at < v.len() => v[at] = marker(rng),
            3 => v.insert(at, marker(rng)),
            4 if at < v.len() => {
                v.remove(at);
            }
            _ => {
                let n = rng.below(8);
                let noise: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, noise);
            }
        }
    }
    v
}

/// `count` inputs made from `sample`: a third cut at random points, the
/// rest mutated. For tests where each input costs a connection.
pub fn mutations(seed: u64, count: usize, sample: &[u8], markers: &[u8]) -> Vec<Vec<u8>> {
    assert!(!markers.is_empty(), "no marker bytes");
    let mut rng = Rng(seed | 1);
    (0..count)
        .map(|i| {
            if i % 3 == 0 {
                sample[..rng.below(sample.len())].to_vec()
            } else {
                mutate(&mut rng, sample, markers)
            }
        })
        .collect()
}

/// Calls `f` with every truncation and `rounds` mutations of each sample,
/// then `rounds` pieces of noise.
pub fn inputs(
    seed: u64,
    rounds: usize,
    samples: &[Vec<u8>],
    markers: &[u8],
    mut f: impl FnMut(&[u8]),
) {
    assert!(!markers.is_empty(), "no marker bytes");
    let mut rng = Rng(seed | 1);
    for s in samples {
        for end in 0..=s.len() {
            f(&s[..end]);
        }
        for _ in 0..rounds {
            f(&mutate(&mut rng, s, markers));
        }
    }
    for _ in 0..rounds {
        let n = rng.below(64);
        let noise: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        f(&noise);
    }
}

/// [`inputs`] for a decoder: `check` runs it (asserting what must hold of
/// its output) and says whether it accepted the input. Both outcomes must
/// occur, or the inputs never reached the decoder's depths: panics (with
/// `what`) otherwise.
pub fn check_decoder(
    what: &str,
    seed: u64,
    rounds: usize,
    samples: &[Vec<u8>],
    markers: &[u8],
    mut check: impl FnMut(&[u8]) -> bool,
) {
    let (mut accepted, mut refused) = (0usize, 0usize);
    inputs(seed, rounds, samples, markers, |input| {
        if check(input) {
            accepted += 1
        } else {
            refused += 1
        }
    });
    assert!(
        accepted > 0 && refused > 0,
        "{what}: {accepted} inputs accepted, {refused} refused"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoder_that_refuses_everything_is_caught() {
        let r = std::panic::catch_unwind(|| {
            check_decoder("never", 1, 10, &[vec![1, 2, 3]], &[0], |_| false)
        });
        assert!(r.is_err());
    }

    #[test]
    fn mutations_are_deterministic() {
        let run = || {
            let mut seen = Vec::new();
            check_decoder("all", 7, 50, &[b"hello".to_vec()], &[0xff], |p| {
                seen.push(p.to_vec());
                !p.is_empty()
            });
            seen
        };
        assert_eq!(run(), run());
    }
}
