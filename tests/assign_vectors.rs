//! The shared vector file and the assignment properties, through the public API only.

use proptest::prelude::*;
use rollout_tui::domain::assign::{
    AssignError, Reason, assign, bucket_side, fractional_bucket, unleash_number,
};
use rollout_tui::domain::health::Side;
use rollout_tui::domain::rollout::{Hashing, Rollout};
use rollout_tui::domain::units::Percent;
use serde_json::{Value, json};

fn vectors_file() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hash_vectors.json");
    let text = std::fs::read_to_string(path).expect("read assets/hash_vectors.json");
    serde_json::from_str(&text).expect("hash_vectors.json is JSON")
}

/// A running rollout built the way the cockpit reads one, so the vectors cover `from_fields` too.
fn rollout(id: &str, hashing: Hashing, percent: Percent) -> Rollout {
    let doc = json!({
        "version": "2", "status": "progressive",
        "rolloutPercentage": percent.to_json(), "hashing": hashing.as_str(),
    });
    let r = Rollout::from_fields(id, doc.as_object().unwrap()).unwrap();
    assert_eq!((r.hashing, r.percentage), (hashing, percent));
    r
}

fn side(text: &str) -> Side {
    match text {
        "canary" => Side::Canary,
        "stable" => Side::Stable,
        other => panic!("unknown side {other}"),
    }
}

#[test]
fn every_vector_holds() {
    let file = vectors_file();
    let vectors = file["vectors"].as_array().unwrap();
    let source_count = |prefix: &str| {
        vectors
            .iter()
            .filter(|v| v["source"].as_str().unwrap().starts_with(prefix))
            .count()
    };
    assert!(source_count("own") >= 50, "at least 50 own cases");
    assert!(source_count("unleash published") >= 2);
    assert!(source_count("flagd fractional_test.go") >= 4);

    for v in vectors {
        let hashing = Hashing::parse(v["hashing"].as_str().unwrap()).unwrap();
        let id = v["rolloutId"].as_str().unwrap();
        let user_key = v["userKey"].as_str().unwrap();
        let key = v
            .get("trimmedKey")
            .map_or(user_key, |k| k.as_str().unwrap());
        let percent = Percent::from_f64(v["percent"].as_f64().unwrap()).unwrap();
        let bucket = u16::try_from(v["bucket"].as_u64().unwrap()).unwrap();
        let expected = side(v["side"].as_str().unwrap());

        assert_eq!(user_key.trim(), key, "{v}");
        let hashed = match hashing {
            Hashing::FractionalV1 => fractional_bucket(id, key),
            Hashing::UnleashV1 => u16::from(unleash_number(id, key)),
        };
        assert_eq!(hashed, bucket, "{v}");
        assert_eq!(
            bucket_side(hashing, id, key, percent),
            (expected, bucket),
            "{v}"
        );

        let a = assign(&rollout(id, hashing, percent), user_key).unwrap();
        assert_eq!((a.side, a.bucket()), (expected, Some(bucket)), "{v}");
    }
}

#[test]
fn published_vectors_are_present() {
    let file = vectors_file();
    let has = |hashing: &str, id: &str, key: &str, bucket: u64| {
        file["vectors"].as_array().unwrap().iter().any(|v| {
            v["hashing"] == hashing
                && v["rolloutId"] == id
                && v["userKey"] == key
                && v["bucket"] == bucket
        })
    };
    assert!(has("unleash-v1", "gr1", "123", 73));
    assert!(has("unleash-v1", "groupX", "999", 25));
    for email in [
        "rachel@faas.com",
        "monica@faas.com",
        "joey@faas.com",
        "ross@faas.com",
    ] {
        let flagd = |v: &&Value| {
            v["rolloutId"] == "headerColor"
                && v["userKey"] == email
                && v.get("flagdVariant").is_some()
        };
        assert!(
            file["vectors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| flagd(&v)),
            "{email}"
        );
    }
}

#[test]
fn invalid_keys_are_refused() {
    let file = vectors_file();
    let r = rollout("checkout-v2", Hashing::FractionalV1, Percent::FULL);
    for v in file["invalidKeys"].as_array().unwrap() {
        let key = v["userKey"].as_str().unwrap();
        let err = assign(&r, key).unwrap_err();
        match v["error"].as_str().unwrap() {
            "empty" => assert_eq!(err, AssignError::EmptyKey),
            "tooLong" => assert!(matches!(err, AssignError::TooLong { .. }), "{err}"),
            other => panic!("unknown error kind {other}"),
        }
    }
}

/// Canary share over a fixed pseudo-random key set: deterministic, so the 24-26 % band cannot
/// flake (a truly random set would leave it about once in a thousand runs).
#[test]
fn quarter_rollout_hits_a_quarter_of_users() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // splitmix64: good enough spread for key generation, no dependency needed.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let keys: Vec<String> = (0..20_000)
        .map(|_| {
            let len = 4 + next() % 28;
            (0..len)
                .map(|_| char::from(b'!' + (next() % 94) as u8))
                .collect()
        })
        .collect();
    let quarter = Percent::from_hundredths(2_500).unwrap();
    for hashing in [Hashing::FractionalV1, Hashing::UnleashV1] {
        for id in ["checkout-v2", "search-rank", "r"] {
            let canary = keys
                .iter()
                .filter(|k| bucket_side(hashing, id, k, quarter).0 == Side::Canary)
                .count();
            let share = canary as f64 / keys.len() as f64;
            assert!((0.24..=0.26).contains(&share), "{hashing} {id}: {share}");
        }
    }
}

fn any_hashing() -> impl Strategy<Value = Hashing> {
    prop_oneof![Just(Hashing::FractionalV1), Just(Hashing::UnleashV1)]
}

/// A percentage the rollout document accepts for this hashing.
fn percent_for(hashing: Hashing, raw: u16) -> Percent {
    let h = raw % 10_001;
    Percent::from_hundredths(if hashing == Hashing::UnleashV1 {
        h / 100 * 100
    } else {
        h
    })
    .unwrap()
}

/// Keys as users have them: any printable text, already without surrounding whitespace.
fn any_key() -> impl Strategy<Value = String> {
    "\\PC{1,40}".prop_filter("trimmed, non-empty", |k| {
        !k.trim().is_empty() && k.trim() == k
    })
}

proptest! {
    #[test]
    fn raising_the_percentage_never_moves_canary_back(
        hashing in any_hashing(), id in "\\PC{0,20}", key in any_key(), a in any::<u16>(), b in any::<u16>(),
    ) {
        let (a, b) = (percent_for(hashing, a), percent_for(hashing, b));
        let (low, high) = (a.min(b), a.max(b));
        let mut r = rollout(&id, hashing, low);
        let before = assign(&r, &key).unwrap();
        r.percentage = high;
        let after = assign(&r, &key).unwrap();
        prop_assert_eq!(before.bucket(), after.bucket());
        if before.side == Side::Canary {
            prop_assert_eq!(after.side, Side::Canary);
        }
    }

    #[test]
    fn excluded_beats_canary_list_beats_bucket(
        hashing in any_hashing(), key in any_key(), raw in any::<u16>(), upper in any::<bool>(),
    ) {
        let mut r = rollout("checkout-v2", hashing, percent_for(hashing, raw));
        // Emails match in any ASCII case; list entries may carry stray whitespace.
        let email = format!("{key}@Example.com");
        let listed = if upper { email.to_ascii_uppercase() } else { email.to_ascii_lowercase() };
        r.canary_users = vec![format!(" {listed} "), format!(" {key}\t")];
        r.excluded_users = vec![email.clone()];
        prop_assert_eq!(assign(&r, &email).unwrap().reason, Reason::Excluded);
        prop_assert_eq!(assign(&r, &email).unwrap().side, Side::Stable);
        r.excluded_users.clear();
        prop_assert_eq!(assign(&r, &email).unwrap().reason, Reason::CanaryUser);
        prop_assert_eq!(assign(&r, &key).unwrap().side, Side::Canary);
        r.canary_users.clear();
        let by_bucket = matches!(assign(&r, &key).unwrap().reason, Reason::Bucket { .. });
        prop_assert!(by_bucket);
    }

    #[test]
    fn surrounding_whitespace_does_not_matter(
        hashing in any_hashing(), key in any_key(), raw in any::<u16>(),
        before in "[ \t\r\n]{0,3}", after in "[ \t\r\n]{0,3}",
    ) {
        let mut r = rollout("search-rank", hashing, percent_for(hashing, raw));
        let padded = format!("{before}{key}{after}");
        prop_assert_eq!(assign(&r, &padded), assign(&r, &key));
        r.canary_users = vec![padded.clone()];
        prop_assert_eq!(assign(&r, &key).unwrap().reason, Reason::CanaryUser);
        prop_assert_eq!(assign(&r, &padded).unwrap().reason, Reason::CanaryUser);
    }

    #[test]
    fn full_and_zero_percent(hashing in any_hashing(), id in "\\PC{0,20}", key in any_key(), other in any_key()) {
        prop_assume!(key != other && !key.contains('@') && !other.contains('@'));
        let mut r = rollout(&id, hashing, Percent::FULL);
        prop_assert_eq!(assign(&r, &key).unwrap().side, Side::Canary);
        r.excluded_users = vec![key.clone()];
        prop_assert_eq!(assign(&r, &key).unwrap().side, Side::Stable);
        r.excluded_users.clear();
        r.percentage = Percent::ZERO;
        r.canary_users = vec![key.clone()];
        prop_assert_eq!(assign(&r, &key).unwrap().side, Side::Canary);
        prop_assert_eq!(assign(&r, &other).unwrap().side, Side::Stable);
    }
}
