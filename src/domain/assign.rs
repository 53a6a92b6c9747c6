//! Which side a user is on: canary or stable. See ARCHITECTURE.md "Assignment hashing (fixed)".
//!
//! The routing application makes the same decision on every request, so the hashing here is
//! a published contract (checked against `assets/hash_vectors.json`) and allocation-free.

use std::collections::HashSet;
use std::fmt;

use super::health::Side;
use super::rollout::{Hashing, Rollout, Status};
use super::units::Percent;

/// Longest accepted user key, in UTF-8 bytes after trimming.
pub const MAX_KEY_BYTES: usize = 512;

/// Number of fractional-v1 buckets: one per hundredth of a percent.
pub const FRACTIONAL_BUCKETS: u16 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    #[error("the user key is empty (after trimming surrounding whitespace)")]
    EmptyKey,
    #[error("the user key is {bytes} bytes long; at most {MAX_KEY_BYTES} bytes are allowed")]
    TooLong { bytes: usize },
}

/// Why a user is on their side; `explain` is what the cockpit shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Excluded,
    CanaryUser,
    /// fractional-v1: bucket 0..=9999 against hundredths of a percent;
    /// unleash-v1: number 1..=100 against whole percent.
    Bucket {
        bucket: u16,
        threshold: u16,
        hashing: Hashing,
    },
    RolledBack,
    NotStarted,
}

impl Reason {
    pub fn explain(&self) -> String {
        match *self {
            Reason::Excluded => "excluded user".into(),
            Reason::CanaryUser => "canary user".into(),
            Reason::Bucket {
                bucket,
                threshold,
                hashing: Hashing::FractionalV1,
            } => {
                let cmp = if bucket < threshold { "<" } else { ">=" };
                format!(
                    "bucket {bucket} of {FRACTIONAL_BUCKETS} {cmp} threshold {threshold} (fractional-v1)"
                )
            }
            Reason::Bucket {
                bucket,
                threshold,
                hashing: Hashing::UnleashV1,
            } => {
                let cmp = if threshold > 0 && bucket <= threshold {
                    "<="
                } else {
                    ">"
                };
                format!("unleash number {bucket} of 100 {cmp} {threshold} % (unleash-v1)")
            }
            Reason::RolledBack => "rollout is rolled back: everyone is on stable".into(),
            Reason::NotStarted => "rollout has not started (planned): everyone is on stable".into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Assignment {
    pub side: Side,
    pub reason: Reason,
}

impl Assignment {
    /// The bucket (fractional-v1) or unleash number (unleash-v1), when the bucket decided.
    pub fn bucket(&self) -> Option<u16> {
        match self.reason {
            Reason::Bucket { bucket, .. } => Some(bucket),
            _ => None,
        }
    }
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
fn scramble(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

#[inline(always)]
fn mix_block(h: u32, k: u32) -> u32 {
    (h ^ scramble(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// MurmurHash3 x86_32 of the concatenation of `parts`, without building it: a partial
/// 4-byte block is carried across part boundaries so `[id, key]` hashes like `id + key`.
pub fn murmur3_x86_32(parts: &[&[u8]], seed: u32) -> u32 {
    let mut h = seed;
    let mut len = 0usize;
    // Little-endian partial block and how many bytes it holds (0..=3 between parts).
    let mut carry = 0u32;
    let mut carried = 0u32;
    for part in parts {
        len += part.len();
        let mut rest = *part;
        if carried > 0 {
            while carried < 4 {
                let Some((&b, tail)) = rest.split_first() else {
                    break;
                };
                carry |= u32::from(b) << (8 * carried);
                carried += 1;
                rest = tail;
            }
            if carried < 4 {
                continue;
            }
            h = mix_block(h, carry);
            (carry, carried) = (0, 0);
        }
        let mut blocks = rest.chunks_exact(4);
        for block in &mut blocks {
            h = mix_block(
                h,
                u32::from_le_bytes([block[0], block[1], block[2], block[3]]),
            );
        }
        for &b in blocks.remainder() {
            carry |= u32::from(b) << (8 * carried);
            carried += 1;
        }
    }
    if carried > 0 {
        h ^= scramble(carry);
    }
    // The reference folds the length in as a 32-bit value; keys are far shorter anyway.
    h ^= len as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// fractional-v1 bucket 0..=9999: flagd's `(hash * totalWeight) >> 32` with a total of 10000.
pub fn fractional_bucket(rollout_id: &str, user_key: &str) -> u16 {
    let h = murmur3_x86_32(&[rollout_id.as_bytes(), user_key.as_bytes()], 0);
    ((u64::from(h) * u64::from(FRACTIONAL_BUCKETS)) >> 32) as u16
}

/// unleash-v1 number 1..=100: Unleash's `normalizedValue(userId, groupId)`.
pub fn unleash_number(rollout_id: &str, user_key: &str) -> u8 {
    let h = murmur3_x86_32(&[rollout_id.as_bytes(), b":", user_key.as_bytes()], 0);
    (h % 100 + 1) as u8
}

/// The bucket decision alone, for a key that is already trimmed. Returns the side and the
/// bucket (fractional-v1) or unleash number (unleash-v1).
#[inline]
pub fn bucket_side(hashing: Hashing, rollout_id: &str, key: &str, percent: Percent) -> (Side, u16) {
    let (canary, bucket) = match hashing {
        Hashing::FractionalV1 => {
            let b = fractional_bucket(rollout_id, key);
            (b < percent.hundredths(), b)
        }
        Hashing::UnleashV1 => {
            let n = u16::from(unleash_number(rollout_id, key));
            // A fractional percent is refused when the document is read; here it rounds down
            // so the share never exceeds what was asked for.
            (percent > Percent::ZERO && n <= whole_percent(percent), n)
        }
    };
    (if canary { Side::Canary } else { Side::Stable }, bucket)
}

fn whole_percent(percent: Percent) -> u16 {
    percent.hundredths() / 100
}

/// Applies the key rule: surrounding whitespace is not part of the key, and the key must be
/// non-empty and at most `MAX_KEY_BYTES`.
pub fn normalize_key(user_key: &str) -> Result<&str, AssignError> {
    let key = user_key.trim();
    if key.is_empty() {
        return Err(AssignError::EmptyKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(AssignError::TooLong { bytes: key.len() });
    }
    Ok(key)
}

/// Whether `key` (trimmed) is on a user list. Emails are compared ASCII-case-insensitively
/// because people type them in any case; other ids are opaque and compared exactly.
pub fn is_listed(list: &[String], key: &str) -> bool {
    let email = key.contains('@');
    list.iter().map(|entry| entry.trim()).any(|entry| {
        if email {
            entry.eq_ignore_ascii_case(key)
        } else {
            entry == key
        }
    })
}

/// The side for a user of this rollout, and why.
pub fn assign(rollout: &Rollout, user_key: &str) -> Result<Assignment, AssignError> {
    let key = normalize_key(user_key)?;
    decide_side(rollout, key, |list, key| match list {
        UserList::Excluded => is_listed(&rollout.excluded_users, key),
        UserList::Canary => is_listed(&rollout.canary_users, key),
    })
}

/// The rule, given how to look a (normalized) key up in the rollout's lists.
fn decide_side(
    rollout: &Rollout,
    key: &str,
    listed: impl Fn(UserList, &str) -> bool,
) -> Result<Assignment, AssignError> {
    let stable = |reason| {
        Ok(Assignment {
            side: Side::Stable,
            reason,
        })
    };
    match rollout.status {
        Status::RolledBack => return stable(Reason::RolledBack),
        Status::Planned => return stable(Reason::NotStarted),
        _ => {}
    }
    if listed(UserList::Excluded, key) {
        return stable(Reason::Excluded);
    }
    if listed(UserList::Canary, key) {
        return Ok(Assignment {
            side: Side::Canary,
            reason: Reason::CanaryUser,
        });
    }
    let (side, bucket) = bucket_side(rollout.hashing, &rollout.id, key, rollout.percentage);
    let threshold = match rollout.hashing {
        Hashing::FractionalV1 => rollout.percentage.hundredths(),
        Hashing::UnleashV1 => whole_percent(rollout.percentage),
    };
    Ok(Assignment {
        side,
        reason: Reason::Bucket {
            bucket,
            threshold,
            hashing: rollout.hashing,
        },
    })
}

/// A rollout prepared for many decisions (a router, a simulator): the user lists become hash
/// sets, so a decision costs one lookup per list instead of a scan. Decides exactly as
/// [`assign`] (a property test holds them equal).
#[derive(Debug, Clone)]
pub struct Assigner<'a> {
    rollout: &'a Rollout,
    excluded: PreparedList,
    canary: PreparedList,
}

/// A user list as two sets by kind, since a key can only match an entry of its own kind:
/// opaque ids (no `@`, compared exactly) and emails (ASCII-lowercased, compared
/// case-insensitively).
#[derive(Debug, Clone, Default)]
struct PreparedList {
    ids: FastSet,
    emails: FastSet,
}

type FastSet = HashSet<String, foldhash::fast::RandomState>;

impl PreparedList {
    fn new(list: &[String]) -> PreparedList {
        let mut prepared = PreparedList::default();
        for entry in list.iter().map(|e| e.trim()) {
            if entry.contains('@') {
                prepared.emails.insert(entry.to_ascii_lowercase());
            } else {
                prepared.ids.insert(entry.to_string());
            }
        }
        prepared
    }

    fn contains(&self, key: &str, is_email: bool) -> bool {
        if !is_email {
            return !self.ids.is_empty() && self.ids.contains(key);
        }
        if self.emails.is_empty() {
            return false;
        }
        if !key.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.emails.contains(key);
        }
        // Keys are at most MAX_KEY_BYTES: fold on the stack, not the heap.
        let mut buf = [0u8; MAX_KEY_BYTES];
        let folded = &mut buf[..key.len()];
        folded.copy_from_slice(key.as_bytes());
        folded.make_ascii_lowercase();
        // ASCII lowercasing keeps UTF-8 valid.
        std::str::from_utf8(folded).is_ok_and(|k| self.emails.contains(k))
    }
}

impl<'a> Assigner<'a> {
    pub fn new(rollout: &'a Rollout) -> Assigner<'a> {
        Assigner {
            rollout,
            excluded: PreparedList::new(&rollout.excluded_users),
            canary: PreparedList::new(&rollout.canary_users),
        }
    }

    pub fn assign(&self, user_key: &str) -> Result<Assignment, AssignError> {
        let key = normalize_key(user_key)?;
        let is_email = key.contains('@');
        decide_side(self.rollout, key, |list, key| match list {
            UserList::Excluded => self.excluded.contains(key, is_email),
            UserList::Canary => self.canary.contains(key, is_email),
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum UserList {
    Excluded,
    Canary,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::io::Cursor;

    fn pct(h: u16) -> Percent {
        Percent::from_hundredths(h).unwrap()
    }

    fn rollout(doc: serde_json::Value) -> Rollout {
        let mut fields = json!({"version": "2", "status": "progressive"});
        fields
            .as_object_mut()
            .unwrap()
            .extend(doc.as_object().unwrap().clone());
        Rollout::from_fields("checkout-v2", fields.as_object().unwrap()).unwrap()
    }

    #[test]
    fn murmur3_reference_values() {
        assert_eq!(murmur3_x86_32(&[], 0), 0);
        assert_eq!(murmur3_x86_32(&[b""], 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(&[b"hello"], 0), 0x248b_fa47);
        let fox = b"The quick brown fox jumps over the lazy dog";
        assert_eq!(murmur3_x86_32(&[fox], 0), 0x2e4f_f723);
        // Every split of the same bytes gives the same hash.
        for i in 0..=fox.len() {
            for j in i..=fox.len() {
                assert_eq!(
                    murmur3_x86_32(&[&fox[..i], &fox[i..j], b"", &fox[j..]], 0),
                    0x2e4f_f723
                );
            }
        }
    }

    #[test]
    fn unleash_published_vectors() {
        // normalizedValue("123", "gr1") == 73: user "123" in group "gr1" hashes "gr1:123".
        assert_eq!(unleash_number("gr1", "123"), 73);
        assert_eq!(unleash_number("groupX", "999"), 25);
    }

    #[test]
    fn flagd_published_vectors() {
        // flagd fractional_test.go, flag "headerColor" split red/blue/green/yellow 25 each:
        // rachel -> blue, monica -> yellow, joey -> red, ross -> blue.
        let quarter = |email| fractional_bucket("headerColor", email) / 2_500;
        assert_eq!(quarter("rachel@faas.com"), 1);
        assert_eq!(quarter("monica@faas.com"), 3);
        assert_eq!(quarter("joey@faas.com"), 0);
        assert_eq!(quarter("ross@faas.com"), 1);
    }

    #[test]
    fn keys_are_trimmed_and_validated() {
        assert_eq!(normalize_key("  alice \t\n"), Ok("alice"));
        assert_eq!(normalize_key(" \t "), Err(AssignError::EmptyKey));
        assert_eq!(normalize_key(&"x".repeat(512)).map(str::len), Ok(512));
        assert_eq!(
            normalize_key(&"x".repeat(513)),
            Err(AssignError::TooLong { bytes: 513 })
        );
        // Bytes, not chars: 171 three-byte characters are 513 bytes.
        assert!(normalize_key(&"語".repeat(171)).is_err());
        let r = rollout(json!({}));
        assert_eq!(assign(&r, ""), Err(AssignError::EmptyKey));
        assert!(
            AssignError::TooLong { bytes: 600 }
                .to_string()
                .contains("600 bytes")
        );
    }

    #[test]
    fn each_reason() {
        let r = rollout(json!({
            "canaryUsers": ["Alice@Example.com", " bob "], "excludedUsers": ["carol@example.com", "bob"],
            "rolloutPercentage": 25
        }));
        let a = assign(&r, "alice@example.COM").unwrap();
        assert_eq!(
            (a.side, a.reason, a.bucket()),
            (Side::Canary, Reason::CanaryUser, None)
        );
        assert_eq!(a.reason.explain(), "canary user");
        // Excluded beats canary list.
        let b = assign(&r, " bob").unwrap();
        assert_eq!((b.side, b.reason), (Side::Stable, Reason::Excluded));
        assert_eq!(b.reason.explain(), "excluded user");
        assert_eq!(
            assign(&r, "CAROL@example.com").unwrap().reason,
            Reason::Excluded
        );
        // Non-email ids are case-sensitive.
        assert!(matches!(
            assign(&r, "BOB").unwrap().reason,
            Reason::Bucket { .. }
        ));

        let d = assign(&r, "dave").unwrap();
        let bucket = fractional_bucket("checkout-v2", "dave");
        assert_eq!(d.bucket(), Some(bucket));
        assert_eq!(
            d.side,
            if bucket < 2_500 {
                Side::Canary
            } else {
                Side::Stable
            }
        );
        assert_eq!(
            d.reason,
            Reason::Bucket {
                bucket,
                threshold: 2_500,
                hashing: Hashing::FractionalV1
            }
        );

        let rolled = rollout(
            json!({"status": "rolled-back", "canaryUsers": ["dave"], "rolloutPercentage": 100}),
        );
        let x = assign(&rolled, "dave").unwrap();
        assert_eq!((x.side, x.reason), (Side::Stable, Reason::RolledBack));
        assert_eq!(
            x.reason.explain(),
            "rollout is rolled back: everyone is on stable"
        );
        let planned = rollout(json!({"status": "planned", "canaryUsers": ["dave"]}));
        let p = assign(&planned, "dave").unwrap();
        assert_eq!((p.side, p.reason), (Side::Stable, Reason::NotStarted));
        assert_eq!(
            p.reason.explain(),
            "rollout has not started (planned): everyone is on stable"
        );
    }

    #[test]
    fn explain_texts() {
        let frac = |bucket, threshold| Reason::Bucket {
            bucket,
            threshold,
            hashing: Hashing::FractionalV1,
        };
        assert_eq!(
            frac(1234, 2500).explain(),
            "bucket 1234 of 10000 < threshold 2500 (fractional-v1)"
        );
        assert_eq!(
            frac(1234, 500).explain(),
            "bucket 1234 of 10000 >= threshold 500 (fractional-v1)"
        );
        let unl = |bucket, threshold| Reason::Bucket {
            bucket,
            threshold,
            hashing: Hashing::UnleashV1,
        };
        assert_eq!(
            unl(73, 75).explain(),
            "unleash number 73 of 100 <= 75 % (unleash-v1)"
        );
        assert_eq!(
            unl(73, 50).explain(),
            "unleash number 73 of 100 > 50 % (unleash-v1)"
        );
        assert_eq!(
            unl(1, 0).explain(),
            "unleash number 1 of 100 > 0 % (unleash-v1)"
        );
    }

    #[test]
    fn unleash_rollout_uses_whole_percent() {
        let r = rollout(json!({"hashing": "unleash-v1", "rolloutPercentage": 73}));
        let id = r.id.clone();
        let a = assign(&r, "123").unwrap();
        let n = u16::from(unleash_number(&id, "123"));
        assert_eq!(
            a.reason,
            Reason::Bucket {
                bucket: n,
                threshold: 73,
                hashing: Hashing::UnleashV1
            }
        );
        assert_eq!(a.side == Side::Canary, n <= 73);
        assert_eq!(
            bucket_side(Hashing::UnleashV1, "gr1", "123", pct(7_300)),
            (Side::Canary, 73)
        );
        assert_eq!(
            bucket_side(Hashing::UnleashV1, "gr1", "123", pct(7_200)),
            (Side::Stable, 73)
        );
        assert_eq!(
            bucket_side(Hashing::UnleashV1, "gr1", "123", pct(7_399)),
            (Side::Canary, 73)
        );
    }

    proptest! {
        #[test]
        fn streaming_matches_the_murmur3_crate(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5),
            seed in any::<u32>(),
        ) {
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut parts: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for &cut in &at {
                parts.push(&bytes[start..cut]);
                start = cut;
            }
            parts.push(&bytes[start..]);
            let expected = murmur3::murmur3_32(&mut Cursor::new(&bytes), seed).unwrap();
            prop_assert_eq!(murmur3_x86_32(&parts, seed), expected);
        }

        /// The prepared lists decide exactly as the list scans, whatever the case, spacing
        /// or shape of keys and entries.
        #[test]
        fn the_assigner_decides_as_assign_does(
            canary in proptest::collection::vec("[ ]?[a-cA-C@.é]{1,6}[ ]?", 0..8),
            excluded in proptest::collection::vec("[a-cA-C@.é]{1,6}", 0..4),
            keys in proptest::collection::vec("[ ]?[a-cA-C@.é]{0,6}[ ]?", 1..16),
            percent in 0u16..=10_000,
            unleash in any::<bool>(),
        ) {
            let percent = f64::from(percent) / 100.0;
            let percent = if unleash { percent.floor() } else { percent };
            let r = rollout(json!({
                "canaryUsers": canary,
                "excludedUsers": excluded,
                "rolloutPercentage": percent,
                "hashing": if unleash { "unleash-v1" } else { "fractional-v1" },
            }));
            let prepared = Assigner::new(&r);
            for key in keys.iter().chain(&canary).chain(&excluded) {
                let upper = key.to_ascii_uppercase();
                for k in [key.as_str(), upper.as_str()] {
                    prop_assert_eq!(prepared.assign(k), assign(&r, k), "key {:?}", k);
                }
            }
        }

        #[test]
        fn buckets_stay_in_range(id in ".{0,20}", key in ".{1,40}") {
            prop_assert!(fractional_bucket(&id, &key) < FRACTIONAL_BUCKETS);
            prop_assert!((1..=100).contains(&unleash_number(&id, &key)));
        }
    }
}
