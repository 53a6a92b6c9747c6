//! What a loopback webhook receiver (`http_fake::FakeServer`) got: the JSON bodies, and
//! the messages counted by their `event` field (the generic webhook shape).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::http_fake::FakeServer;

pub fn bodies(server: &FakeServer) -> Vec<Value> {
    server
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
        .collect()
}

pub fn counts(server: &FakeServer) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for b in bodies(server) {
        *counts
            .entry(b["event"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    counts
}
