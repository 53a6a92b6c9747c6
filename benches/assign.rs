//! Assignment throughput: the routing application decides on every request, so the target
//! is >= 20 million decisions per second per core: the bucket rule alone, `assign` (list
//! scans, for one-off answers) and `Assigner` (prepared lists, for many decisions).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rollout_tui::domain::assign::{Assigner, assign, bucket_side};
use rollout_tui::domain::health::Side;
use rollout_tui::domain::rollout::{Hashing, Rollout};
use rollout_tui::domain::units::Percent;
use serde_json::json;

const KEYS: usize = 1024;

/// Distinct 30-byte keys shaped like real ids, generated up front so the loop only hashes.
fn keys() -> Vec<String> {
    (0..KEYS)
        .map(|i| {
            format!(
                "user-{i:05}-{:019x}",
                (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
        })
        .collect()
}

fn bench_bucket_side(c: &mut Criterion) {
    let keys = keys();
    assert!(keys.iter().all(|k| k.len() == 30));
    let percent = Percent::from_hundredths(2_500).unwrap();
    let mut group = c.benchmark_group("bucket_side");
    group.throughput(Throughput::Elements(KEYS as u64));
    for hashing in [Hashing::FractionalV1, Hashing::UnleashV1] {
        group.bench_function(format!("{hashing} 30-byte keys"), |b| {
            b.iter(|| {
                let mut canary = 0u32;
                for key in &keys {
                    let (side, _) =
                        bucket_side(hashing, black_box("checkout-v2"), black_box(key), percent);
                    canary += (side == Side::Canary) as u32;
                }
                canary
            })
        });
    }
    group.finish();
}

fn bench_assign(c: &mut Criterion) {
    let keys = keys();
    let canary_users: Vec<String> = (0..100).map(|i| format!("tester{i}@example.com")).collect();
    let doc = json!({
        "version": "2", "status": "progressive", "rolloutPercentage": 25,
        "canaryUsers": canary_users, "excludedUsers": ["blocked@example.com"],
    });
    let rollout = Rollout::from_fields("checkout-v2", doc.as_object().unwrap()).unwrap();
    let mut group = c.benchmark_group("assign");
    group.throughput(Throughput::Elements(KEYS as u64));
    // Keys are not on the lists: every decision scans both lists, then hashes (the worst case).
    group.bench_function("100 canary users, 30-byte keys", |b| {
        b.iter(|| {
            keys.iter()
                .map(|k| {
                    assign(black_box(&rollout), black_box(k))
                        .unwrap()
                        .bucket()
                        .unwrap_or(0) as u32
                })
                .sum::<u32>()
        })
    });
    // Email keys take the case-insensitive comparison path.
    let emails: Vec<String> = (0..KEYS)
        .map(|i| format!("someone{i:05}@example.com"))
        .collect();
    group.bench_function("100 canary users, email keys", |b| {
        b.iter(|| {
            emails
                .iter()
                .map(|k| {
                    assign(black_box(&rollout), black_box(k))
                        .unwrap()
                        .bucket()
                        .unwrap_or(0) as u32
                })
                .sum::<u32>()
        })
    });
    // Prepared once per rollout, as a router or the simulator would: hash-set lookups.
    let prepared = Assigner::new(&rollout);
    for (name, keys) in [("30-byte keys", &keys), ("email keys", &emails)] {
        group.bench_function(format!("Assigner, 100 canary users, {name}"), |b| {
            b.iter(|| {
                keys.iter()
                    .map(|k| prepared.assign(black_box(k)).unwrap().bucket().unwrap_or(0) as u32)
                    .sum::<u32>()
            })
        });
    }
    // The worst case for prepared lists: opaque-id canary users, so every id key is looked up.
    let id_users: Vec<String> = (0..100).map(|i| format!("tester-{i:05}")).collect();
    let id_doc = json!({
        "version": "2", "status": "progressive", "rolloutPercentage": 25,
        "canaryUsers": id_users, "excludedUsers": ["blocked-0001"],
    });
    let id_rollout = Rollout::from_fields("checkout-v2", id_doc.as_object().unwrap()).unwrap();
    let prepared_ids = Assigner::new(&id_rollout);
    group.bench_function("Assigner, 100 canary ids, 30-byte keys", |b| {
        b.iter(|| {
            keys.iter()
                .map(|k| {
                    prepared_ids
                        .assign(black_box(k))
                        .unwrap()
                        .bucket()
                        .unwrap_or(0) as u32
                })
                .sum::<u32>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_bucket_side, bench_assign);
criterion_main!(benches);
