//! Firestore store: rollouts in `collection`, audit events in `events_collection`,
//! leases in `leases_collection`.
//!
//! The `firestore` crate builds the authenticated channel (Application Default
//! Credentials, or the emulator); the calls themselves use its re-exported raw
//! Firestore v1 API, because this store needs exact control over value types,
//! field masks, preconditions and the listen protocol (its listener retries
//! silently, so it could not report disconnects).
//!
//! On real Firestore `list_events` needs one composite index on
//! `events_collection`: `rolloutId` ascending, `at` descending (the error names a
//! link that creates it). The emulator needs none.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use firestore::gcloud_sdk::google::firestore::v1 as fs;
use firestore::gcloud_sdk::google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use firestore::gcloud_sdk::prost_types::Timestamp;
use firestore::gcloud_sdk::tonic::codegen::http::HeaderValue;
use firestore::gcloud_sdk::tonic::codegen::tokio_stream::{self, StreamExt as _};
use firestore::gcloud_sdk::tonic::{Code, Extensions, Status, Streaming};
use firestore::gcloud_sdk::{GoogleAuthMiddleware, HeaderMap};
use firestore::{FirestoreDb, FirestoreDbOptions};
use fs::firestore_client::FirestoreClient;
use fs::structured_query::{
    CollectionSelector, Direction, FieldFilter, FieldReference, Filter, Order, field_filter,
    filter::FilterType,
};
use fs::target_change::TargetChangeType;
use fs::value::ValueType;
use serde_json::{Map, Value as Json};
use tokio::sync::{OnceCell, mpsc};

use super::{
    Lease, LeaseOutcome, Patch, Revision, RolloutStore, StoreChange, StoreError, StoreResult,
    StoredRollout,
};
use crate::config::StoreConfig;
use crate::domain::event::Event;
use crate::domain::rollout::{Fields, field};

type Client = FirestoreClient<GoogleAuthMiddleware>;

pub const EMULATOR_ENV: &str = "FIRESTORE_EMULATOR_HOST";

/// Bounds every unary call, so a black-holed network is an error rather than a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Opening a listen stream and receiving its first consistent snapshot.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
/// The same for the one quiet reopen after a break, before the watcher is told.
const QUIET_REOPEN: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const TX_ATTEMPTS: u32 = 25;
const WATCH_BUFFER: usize = 256;
const TARGET_ID: i32 = 1;
const EVENT_TIME: &str = "at";
const EVENT_ROLLOUT: &str = "rolloutId";

/// Where the store lives, and how to say so in messages.
#[derive(Debug)]
struct Names {
    project: String,
    database: String,
    collection: String,
    events: String,
    leases: String,
    emulator: Option<String>,
}

impl Names {
    fn database_path(&self) -> String {
        format!("projects/{}/databases/{}", self.project, self.database)
    }

    fn documents(&self) -> String {
        format!("{}/documents", self.database_path())
    }

    fn doc(&self, collection: &str, id: &str) -> String {
        format!("{}/{collection}/{id}", self.documents())
    }

    fn place(&self) -> String {
        match &self.emulator {
            Some(host) => format!("the Firestore emulator at {host}"),
            None => format!(
                "Firestore project '{}' database '{}'",
                self.project, self.database
            ),
        }
    }

    fn reach_hint(&self) -> String {
        match &self.emulator {
            Some(host) => format!(
                "is the emulator running? (gcloud emulators firestore start --host-port={host})"
            ),
            None => "check the network, or set [store] emulator_host / FIRESTORE_EMULATOR_HOST to use an emulator".into(),
        }
    }

    fn credentials_hint(&self) -> &'static str {
        "run `gcloud auth application-default login` (or point GOOGLE_APPLICATION_CREDENTIALS at a service-account key with the Cloud Datastore User role), or set [store] emulator_host for the emulator"
    }

    fn error(&self, what: &str, s: &Status) -> StoreError {
        let detail = format!(
            "{what} on {}: {} ({:?})",
            self.place(),
            s.message(),
            s.code()
        );
        match s.code() {
            Code::Unauthenticated | Code::PermissionDenied => {
                StoreError::Unavailable(format!("{detail}; {}", self.credentials_hint()))
            }
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::ResourceExhausted => {
                StoreError::Unavailable(format!("{detail}; {}", self.reach_hint()))
            }
            _ => StoreError::Other(detail),
        }
    }
}

/// The emulator takes the conventional stub token and needs no Google credentials.
#[derive(Debug)]
struct EmulatorCredentials(EntityTag);

impl CredentialsProvider for EmulatorCredentials {
    async fn headers(
        &self,
        extensions: Extensions,
    ) -> Result<
        CacheableResource<HeaderMap>,
        firestore::gcloud_sdk::google_cloud_auth::errors::CredentialsError,
    > {
        if extensions.get::<EntityTag>() == Some(&self.0) {
            return Ok(CacheableResource::NotModified);
        }
        let mut data = HeaderMap::new();
        data.insert("authorization", HeaderValue::from_static("Bearer owner"));
        Ok(CacheableResource::New {
            entity_tag: self.0.clone(),
            data,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

/// Rollouts in Google Firestore (or its emulator). Connects on first use, so
/// opening never blocks and a failed connection is retried by the next call.
pub struct FirestoreStore {
    names: Arc<Names>,
    db: OnceCell<FirestoreDb>,
}

impl FirestoreStore {
    /// `emulator_host` from the config wins over `FIRESTORE_EMULATOR_HOST`.
    pub fn open(config: &StoreConfig) -> StoreResult<FirestoreStore> {
        let project = config
            .project_id
            .clone()
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| {
                StoreError::Other(
                    "store.project_id is required when store.kind = \"firestore\"".into(),
                )
            })?;
        let emulator = config
            .emulator_host
            .clone()
            .or_else(|| std::env::var(EMULATOR_ENV).ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        Ok(FirestoreStore {
            names: Arc::new(Names {
                project,
                database: config.database.clone(),
                collection: config.collection.clone(),
                events: config.events_collection.clone(),
                leases: config.leases_collection.clone(),
                emulator,
            }),
            db: OnceCell::new(),
        })
    }

    async fn client(&self) -> StoreResult<Client> {
        let db = self.db.get_or_try_init(|| connect(&self.names)).await?;
        Ok(db.client().get())
    }

    fn rollout_name(&self, id: &str) -> StoreResult<String> {
        check_id(id)?;
        Ok(self.names.doc(&self.names.collection, id))
    }

    async fn read(&self, client: &mut Client, id: &str) -> StoreResult<Option<StoredRollout>> {
        let name = self.rollout_name(id)?;
        get_doc(client, &name, None)
            .await
            .map(|d| d.map(stored))
            .map_err(|s| self.names.error(&format!("reading rollout '{id}'"), &s))
    }

    async fn commit(
        &self,
        client: &mut Client,
        writes: Vec<fs::Write>,
        transaction: Vec<u8>,
    ) -> Result<fs::CommitResponse, Status> {
        let request = fs::CommitRequest {
            database: self.names.database_path(),
            writes,
            transaction,
            ..Default::default()
        };
        rpc(client.commit(request)).await
    }

    /// A non-transactional commit; ABORTED means lock contention and nothing written, so retry.
    async fn commit_retrying(
        &self,
        client: &mut Client,
        writes: Vec<fs::Write>,
    ) -> Result<fs::CommitResponse, Status> {
        let mut attempt = 0;
        loop {
            match self.commit(client, writes.clone(), Vec::new()).await {
                Err(s) if s.code() == Code::Aborted && attempt < TX_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(jitter(Duration::from_millis(10 * u64::from(attempt))))
                        .await;
                }
                result => return result,
            }
        }
    }

    fn event_write(&self, event: &Event) -> StoreResult<fs::Write> {
        let Json::Object(m) = serde_json::to_value(event)
            .map_err(|e| StoreError::Other(format!("cannot encode event: {e}")))?
        else {
            return Err(StoreError::Other("an event is not a JSON object".into()));
        };
        let fields = m
            .iter()
            .map(|(k, v)| (k.clone(), to_field(k, v, &[EVENT_TIME])))
            .collect();
        let name = self.names.doc(&self.names.events, &event_id());
        Ok(update(name, fields, None, exists(false)))
    }

    async fn begin(&self, client: &mut Client) -> Result<Vec<u8>, Status> {
        let request = fs::BeginTransactionRequest {
            database: self.names.database_path(),
            options: Some(fs::TransactionOptions {
                mode: Some(fs::transaction_options::Mode::ReadWrite(Default::default())),
            }),
            ..Default::default()
        };
        Ok(rpc(client.begin_transaction(request)).await?.transaction)
    }

    async fn rollback(&self, client: &mut Client, transaction: Vec<u8>) {
        let request = fs::RollbackRequest {
            database: self.names.database_path(),
            transaction,
            ..Default::default()
        };
        // Best effort: an abandoned transaction expires on its own.
        let _ = rpc(client.rollback(request)).await;
    }

    /// Runs `body` in a read-write transaction, retrying when Firestore aborts it
    /// because another transaction touched the same document.
    async fn transaction<T, F, Fut>(&self, what: &str, body: F) -> StoreResult<T>
    where
        F: Fn(Client, Vec<u8>) -> Fut,
        Fut: Future<Output = Result<Step<T>, Status>>,
    {
        let mut client = self.client().await?;
        let mut attempt = 0;
        loop {
            let tx = self
                .begin(&mut client)
                .await
                .map_err(|s| self.names.error(what, &s))?;
            let result = match body(client.clone(), tx.clone()).await {
                Ok(Step::Done(value)) => {
                    self.rollback(&mut client, tx).await;
                    return value;
                }
                Ok(Step::Commit(writes, value)) => {
                    self.commit(&mut client, writes, tx).await.map(|_| value)
                }
                Err(s) => {
                    self.rollback(&mut client, tx).await;
                    Err(s)
                }
            };
            match result {
                Ok(value) => return Ok(value),
                Err(s) if s.code() == Code::Aborted && attempt < TX_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(jitter(Duration::from_millis(10 * u64::from(attempt))))
                        .await;
                }
                Err(s) => return Err(self.names.error(what, &s)),
            }
        }
    }

    async fn query(
        &self,
        what: &str,
        query: fs::StructuredQuery,
    ) -> StoreResult<Vec<fs::Document>> {
        let mut client = self.client().await?;
        let request = fs::RunQueryRequest {
            parent: self.names.documents(),
            query_type: Some(fs::run_query_request::QueryType::StructuredQuery(query)),
            ..Default::default()
        };
        let run = async {
            let mut stream = client.run_query(request).await?.into_inner();
            let mut docs = Vec::new();
            while let Some(response) = stream.message().await? {
                docs.extend(response.document);
            }
            Ok(docs)
        };
        timed(run).await.map_err(|s| self.names.error(what, &s))
    }
}

/// What a transaction body decided.
enum Step<T> {
    /// Nothing to write; the answer (an error included) is final.
    Done(StoreResult<T>),
    /// Commit these writes; on success the answer is `T`.
    Commit(Vec<fs::Write>, T),
}

async fn connect(names: &Names) -> StoreResult<FirestoreDb> {
    let options =
        FirestoreDbOptions::new(names.project.clone()).with_database_id(names.database.clone());
    let connecting = async {
        match &names.emulator {
            Some(host) => {
                let url = if host.contains("://") {
                    host.clone()
                } else {
                    format!("http://{host}")
                };
                let credentials = Credentials::from(EmulatorCredentials(EntityTag::new()));
                FirestoreDb::with_options_auth(options.with_firebase_api_url(url), credentials)
                    .await
            }
            None => FirestoreDb::with_options(options).await,
        }
    };
    let hint = match &names.emulator {
        Some(_) => names.reach_hint(),
        None => format!(
            "{}; if the credentials are fine, {}",
            names.credentials_hint(),
            names.reach_hint()
        ),
    };
    match tokio::time::timeout(CALL_TIMEOUT, connecting).await {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!(
            "cannot connect to {}: {e}; {hint}",
            names.place()
        ))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "cannot connect to {}: no answer within {CALL_TIMEOUT:?}; {hint}",
            names.place()
        ))),
    }
}

async fn timed<T>(fut: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| {
            Err(Status::deadline_exceeded(format!(
                "no answer within {CALL_TIMEOUT:?}"
            )))
        })
}

async fn rpc<T>(
    fut: impl Future<Output = Result<firestore::gcloud_sdk::tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    timed(async { fut.await.map(|r| r.into_inner()) }).await
}

async fn get_doc(
    client: &mut Client,
    name: &str,
    transaction: Option<Vec<u8>>,
) -> Result<Option<fs::Document>, Status> {
    let request = fs::GetDocumentRequest {
        name: name.to_string(),
        consistency_selector: transaction
            .map(fs::get_document_request::ConsistencySelector::Transaction),
        ..Default::default()
    };
    match rpc(client.get_document(request)).await {
        Ok(doc) => Ok(Some(doc)),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(s),
    }
}

fn check_id(id: &str) -> StoreResult<()> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." || id.starts_with("__") {
        return Err(StoreError::Other(format!(
            "'{id}' cannot be a Firestore document id (empty, '/', '.', '..' and a leading '__' are not allowed)"
        )));
    }
    Ok(())
}

fn jitter(base: Duration) -> Duration {
    let spread = RandomState::new().hash_one(SystemTime::now()) % 1000;
    base + base * u32::try_from(spread).unwrap_or(0) / 1000
}

/// Creation time first, so events with the same `at` list in the order they were written.
fn event_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let random = RandomState::new().hash_one((nanos, std::process::id()));
    format!("{nanos:020}-{random:016x}")
}

fn exists(yes: bool) -> fs::precondition::ConditionType {
    fs::precondition::ConditionType::Exists(yes)
}

fn update(
    name: String,
    fields: HashMap<String, fs::Value>,
    mask: Option<Vec<String>>,
    precondition: fs::precondition::ConditionType,
) -> fs::Write {
    fs::Write {
        update_mask: mask.map(|field_paths| fs::DocumentMask { field_paths }),
        current_document: Some(fs::Precondition {
            condition_type: Some(precondition),
        }),
        operation: Some(fs::write::Operation::Update(fs::Document {
            name,
            fields,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A top-level field name as a Firestore field path.
fn field_path(name: &str) -> String {
    let simple = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if simple {
        name.to_string()
    } else {
        format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
    }
}

fn collection(id: &str) -> Vec<CollectionSelector> {
    vec![CollectionSelector {
        collection_id: id.to_string(),
        all_descendants: false,
    }]
}

fn order(path: &str, direction: Direction) -> Order {
    Order {
        field: Some(FieldReference {
            field_path: path.to_string(),
        }),
        direction: direction as i32,
    }
}

// ---- values -------------------------------------------------------------

fn value(v: ValueType) -> fs::Value {
    fs::Value {
        value_type: Some(v),
    }
}

/// Firestore keeps microseconds; truncating here makes what a write returns equal what a read sees.
fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos() / 1000 * 1000).unwrap_or(0),
    }
}

fn time_of(t: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

/// The shortest exact RFC 3339 form: whole seconds, millis, micros or nanos.
fn time_text(t: &Timestamp) -> String {
    time_of(t).map_or_else(
        || format!("invalid timestamp {}s {}ns", t.seconds, t.nanos),
        |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    )
}

fn revision_of(t: Option<&Timestamp>) -> Revision {
    Revision(
        t.and_then(time_of)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true))
            .unwrap_or_default(),
    )
}

fn parse_revision(r: &Revision) -> Option<Timestamp> {
    let t = DateTime::parse_from_rfc3339(r.0.trim()).ok()?;
    let t = t.with_timezone(&Utc);
    Some(Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).ok()?,
    })
}

/// A field value; named timestamp fields holding RFC 3339 text become `timestampValue`.
fn to_field(name: &str, v: &Json, timestamps: &[&str]) -> fs::Value {
    if timestamps.contains(&name)
        && let Json::String(s) = v
        && let Ok(t) = DateTime::parse_from_rfc3339(s)
    {
        return value(ValueType::TimestampValue(timestamp(t.with_timezone(&Utc))));
    }
    to_value(v)
}

fn rollout_field(name: &str, v: &Json) -> fs::Value {
    to_field(name, v, &field::TIMESTAMPS)
}

fn to_value(v: &Json) -> fs::Value {
    value(match v {
        Json::Null => ValueType::NullValue(0),
        Json::Bool(b) => ValueType::BooleanValue(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => ValueType::IntegerValue(i),
            None => ValueType::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => ValueType::StringValue(s.clone()),
        Json::Array(a) => ValueType::ArrayValue(fs::ArrayValue {
            values: a.iter().map(to_value).collect(),
        }),
        Json::Object(m) => match tagged(m) {
            Some(t) => t,
            None => ValueType::MapValue(fs::MapValue {
                fields: m.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
            }),
        },
    })
}

/// The JSON forms `from_value` gives bytes, references and geo points, read back.
fn tagged(m: &Map<String, Json>) -> Option<ValueType> {
    if m.len() != 1 {
        return None;
    }
    let (tag, v) = m.iter().next()?;
    match (tag.as_str(), v) {
        ("bytesValue", Json::String(s)) => unbase64(s).map(ValueType::BytesValue),
        ("referenceValue", Json::String(s)) => Some(ValueType::ReferenceValue(s.clone())),
        ("geoPointValue", Json::Object(p)) if p.len() == 2 => Some(ValueType::GeoPointValue(
            firestore::gcloud_sdk::google::r#type::LatLng {
                latitude: p.get("latitude")?.as_f64()?,
                longitude: p.get("longitude")?.as_f64()?,
            },
        )),
        _ => None,
    }
}

fn from_value(v: &fs::Value) -> Json {
    let tag = |name: &str, v: Json| Json::Object(Map::from_iter([(name.to_string(), v)]));
    match &v.value_type {
        None | Some(ValueType::NullValue(_)) => Json::Null,
        Some(ValueType::BooleanValue(b)) => Json::Bool(*b),
        Some(ValueType::IntegerValue(i)) => Json::from(*i),
        // JSON has no NaN or infinities; text shows them and nothing writes them back unasked.
        Some(ValueType::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Json::String(d.to_string()), Json::Number),
        Some(ValueType::TimestampValue(t)) => Json::String(time_text(t)),
        Some(ValueType::StringValue(s)) => Json::String(s.clone()),
        Some(ValueType::BytesValue(b)) => tag("bytesValue", Json::String(base64(b))),
        Some(ValueType::ReferenceValue(r)) => tag("referenceValue", Json::String(r.clone())),
        Some(ValueType::GeoPointValue(p)) => tag(
            "geoPointValue",
            serde_json::json!({"latitude": p.latitude, "longitude": p.longitude}),
        ),
        Some(ValueType::ArrayValue(a)) => Json::Array(a.values.iter().map(from_value).collect()),
        Some(ValueType::MapValue(m)) => Json::Object(from_fields(&m.fields)),
        // Pipeline expressions never occur in stored documents.
        Some(other) => Json::String(format!("{other:?}")),
    }
}

/// Sorted by name: Firestore returns fields in no particular order.
fn from_fields(fields: &HashMap<String, fs::Value>) -> Fields {
    let sorted: BTreeMap<&String, &fs::Value> = fields.iter().collect();
    sorted
        .into_iter()
        .map(|(k, v)| (k.clone(), from_value(v)))
        .collect()
}

fn doc_id(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn stored(doc: fs::Document) -> StoredRollout {
    StoredRollout {
        id: doc_id(&doc.name).to_string(),
        revision: revision_of(doc.update_time.as_ref()),
        fields: from_fields(&doc.fields),
        defect: None,
    }
}

fn event_of(doc: &fs::Document) -> StoreResult<Event> {
    let fields = from_fields(&doc.fields);
    serde_json::from_value(Json::Object(fields.clone())).map_err(|e| {
        StoreError::Other(format!(
            "stored event {} is unreadable ({e}): {}",
            doc.name,
            Json::Object(fields)
        ))
    })
}

fn lease_fields(lease: &Lease) -> HashMap<String, fs::Value> {
    HashMap::from([
        (
            "rolloutId".to_string(),
            value(ValueType::StringValue(lease.rollout_id.clone())),
        ),
        (
            "holder".to_string(),
            value(ValueType::StringValue(lease.holder.clone())),
        ),
        (
            "acquiredAt".to_string(),
            value(ValueType::TimestampValue(timestamp(lease.acquired_at))),
        ),
        (
            "expiresAt".to_string(),
            value(ValueType::TimestampValue(timestamp(lease.expires_at))),
        ),
    ])
}

/// Malformed lease documents are reported, never overwritten (DATA_LOSS maps to `StoreError::Other`).
fn lease_of(rollout_id: &str, doc: &fs::Document) -> Result<Lease, Status> {
    let bad = |why: &str| Status::data_loss(format!("lease document {} {why}", doc.name));
    let time = |name: &str| match doc.fields.get(name).and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::TimestampValue(t)) => {
            time_of(t).ok_or_else(|| bad(&format!("has an invalid {name}")))
        }
        _ => Err(bad(&format!("has no timestamp {name}"))),
    };
    let holder = match doc.fields.get("holder").and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::StringValue(h)) => h.clone(),
        _ => return Err(bad("has no holder")),
    };
    Ok(Lease {
        rollout_id: rollout_id.to_string(),
        holder,
        acquired_at: time("acquiredAt")?,
        expires_at: time("expiresAt")?,
    })
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(B64[(n >> (18 - 6 * i)) as usize & 63])
            } else {
                '='
            });
        }
    }
    out
}

/// Only canonical base64 counts, so a map that merely looks tagged stays a map.
fn unbase64(s: &str) -> Option<Vec<u8>> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        acc = (acc << 6) | B64.iter().position(|&b| b == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (base64(&out) == s).then_some(out)
}

// ---- the store ----------------------------------------------------------

#[async_trait]
impl RolloutStore for FirestoreStore {
    fn describe(&self) -> String {
        let n = &self.names;
        let place = format!("firestore {}/{}/{}", n.project, n.database, n.collection);
        match &n.emulator {
            Some(host) => format!("{place} (emulator {host})"),
            None => place,
        }
    }

    async fn list(&self) -> StoreResult<Vec<StoredRollout>> {
        let query = fs::StructuredQuery {
            from: collection(&self.names.collection),
            order_by: vec![order("__name__", Direction::Ascending)],
            ..Default::default()
        };
        let docs = self.query("listing rollouts", query).await?;
        Ok(docs.into_iter().map(stored).collect())
    }

    async fn get(&self, id: &str) -> StoreResult<Option<StoredRollout>> {
        let mut client = self.client().await?;
        self.read(&mut client, id).await
    }

    async fn create(&self, id: &str, fields: &Fields, event: &Event) -> StoreResult<StoredRollout> {
        let name = self.rollout_name(id)?;
        let mut client = self.client().await?;
        let values: HashMap<String, fs::Value> = fields
            .iter()
            .map(|(k, v)| (k.clone(), rollout_field(k, v)))
            .collect();
        let normalized = Map::from_iter(values.iter().map(|(k, v)| (k.clone(), from_value(v))));
        let writes = vec![
            update(name, values, None, exists(false)),
            self.event_write(event)?,
        ];
        match self.commit_retrying(&mut client, writes).await {
            Ok(response) => Ok(StoredRollout {
                id: id.to_string(),
                revision: revision_of(
                    response
                        .write_results
                        .first()
                        .and_then(|r| r.update_time.as_ref()),
                ),
                fields: sort(normalized),
                defect: None,
            }),
            Err(s) if matches!(s.code(), Code::AlreadyExists | Code::FailedPrecondition) => {
                match self.read(&mut client, id).await? {
                    Some(_) => Err(StoreError::AlreadyExists(id.to_string())),
                    None => Err(self.names.error(&format!("creating rollout '{id}'"), &s)),
                }
            }
            Err(s) => Err(self.names.error(&format!("creating rollout '{id}'"), &s)),
        }
    }

    async fn patch(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
    ) -> StoreResult<StoredRollout> {
        let name = self.rollout_name(id)?;
        let mut client = self.client().await?;
        let conflict = |current: StoredRollout| StoreError::Conflict {
            id: id.to_string(),
            current: Box::new(current),
        };
        // Read first: the result must be the whole document, and an equal update_time
        // at commit proves it is still exactly what was read.
        let Some(mut current) = self.read(&mut client, id).await? else {
            return Err(StoreError::NotFound(id.to_string()));
        };
        let expected_time = parse_revision(expected);
        if expected_time.is_none() || parse_revision(&current.revision) != expected_time {
            return Err(conflict(current));
        }
        let mut values = HashMap::new();
        let mut mask = Vec::new();
        for (field_name, v) in &patch.changes {
            mask.push(field_path(field_name));
            if let Some(v) = v {
                values.insert(field_name.clone(), rollout_field(field_name, v));
            }
        }
        let normalized = Patch {
            changes: patch
                .changes
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(|_| from_value(&values[k]))))
                .collect(),
        };
        let precondition =
            fs::precondition::ConditionType::UpdateTime(expected_time.unwrap_or_default());
        let writes = vec![
            update(name, values, Some(mask), precondition),
            self.event_write(event)?,
        ];
        match self.commit_retrying(&mut client, writes).await {
            Ok(response) => {
                normalized.apply_to(&mut current.fields);
                current.fields = sort(std::mem::take(&mut current.fields));
                current.revision = revision_of(
                    response
                        .write_results
                        .first()
                        .and_then(|r| r.update_time.as_ref()),
                );
                Ok(current)
            }
            Err(s)
                if matches!(
                    s.code(),
                    Code::FailedPrecondition | Code::NotFound | Code::Aborted
                ) =>
            {
                match self.read(&mut client, id).await? {
                    Some(now) => Err(conflict(now)),
                    None => Err(StoreError::NotFound(id.to_string())),
                }
            }
            Err(s) => Err(self.names.error(
                &format!(
                    "writing rollout '{id}' (document and event are written together or not at all)"
                ),
                &s,
            )),
        }
    }

    async fn append_event(&self, event: &Event) -> StoreResult<()> {
        let mut client = self.client().await?;
        let writes = vec![self.event_write(event)?];
        self.commit_retrying(&mut client, writes)
            .await
            .map(|_| ())
            .map_err(|s| self.names.error("appending an event", &s))
    }

    async fn list_events(&self, rollout_id: &str, limit: usize) -> StoreResult<Vec<Event>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let query = fs::StructuredQuery {
            from: collection(&self.names.events),
            r#where: Some(Filter {
                filter_type: Some(FilterType::FieldFilter(FieldFilter {
                    field: Some(FieldReference {
                        field_path: EVENT_ROLLOUT.to_string(),
                    }),
                    op: field_filter::Operator::Equal as i32,
                    value: Some(value(ValueType::StringValue(rollout_id.to_string()))),
                })),
            }),
            order_by: vec![
                order(EVENT_TIME, Direction::Descending),
                order("__name__", Direction::Descending),
            ],
            limit: Some(i32::try_from(limit).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        let docs = self
            .query(&format!("listing events of '{rollout_id}'"), query)
            .await?;
        docs.iter().map(event_of).collect()
    }

    async fn acquire_lease(
        &self,
        rollout_id: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaseOutcome> {
        check_id(rollout_id)?;
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|e| StoreError::Other(format!("lease ttl {ttl:?}: {e}")))?;
        // Millisecond precision, as in the local store, so equal inputs give equal leases.
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let name = self.names.doc(&self.names.leases, rollout_id);
        self.transaction("acquiring the lease", |mut client, tx| {
            let name = name.clone();
            async move {
                let current = match get_doc(&mut client, &name, Some(tx)).await? {
                    Some(doc) => Some(lease_of(rollout_id, &doc)?),
                    None => None,
                }
                .filter(|l| l.expires_at > now);
                let acquired_at = match current {
                    Some(l) if l.holder != holder => {
                        return Ok(Step::Done(Ok(LeaseOutcome::HeldByOther(l))));
                    }
                    Some(l) => l.acquired_at,
                    None => now,
                };
                let lease = Lease {
                    rollout_id: rollout_id.to_string(),
                    holder: holder.to_string(),
                    acquired_at,
                    expires_at: now + ttl,
                };
                // Inside the transaction the read is the guard; no precondition needed.
                let write = fs::Write {
                    operation: Some(fs::write::Operation::Update(fs::Document {
                        name,
                        fields: lease_fields(&lease),
                        ..Default::default()
                    })),
                    ..Default::default()
                };
                Ok(Step::Commit(vec![write], LeaseOutcome::Held(lease)))
            }
        })
        .await
    }

    async fn release_lease(&self, rollout_id: &str, holder: &str) -> StoreResult<()> {
        check_id(rollout_id)?;
        let name = self.names.doc(&self.names.leases, rollout_id);
        self.transaction("releasing the lease", |mut client, tx| {
            let name = name.clone();
            async move {
                let Some(doc) = get_doc(&mut client, &name, Some(tx)).await? else {
                    return Ok(Step::Done(Ok(())));
                };
                if lease_of(rollout_id, &doc)?.holder != holder {
                    return Ok(Step::Done(Ok(())));
                }
                let delete = fs::Write {
                    operation: Some(fs::write::Operation::Delete(name)),
                    ..Default::default()
                };
                Ok(Step::Commit(vec![delete], ()))
            }
        })
        .await
    }

    async fn get_lease(&self, rollout_id: &str) -> StoreResult<Option<Lease>> {
        check_id(rollout_id)?;
        let mut client = self.client().await?;
        let name = self.names.doc(&self.names.leases, rollout_id);
        let what = format!("reading the lease of '{rollout_id}'");
        let doc = get_doc(&mut client, &name, None)
            .await
            .map_err(|s| self.names.error(&what, &s))?;
        doc.map(|d| lease_of(rollout_id, &d))
            .transpose()
            .map_err(|s| self.names.error(&what, &s))
    }

    async fn watch(&self) -> StoreResult<mpsc::Receiver<StoreChange>> {
        let client = self.client().await?;
        let mut listener = Listener {
            client,
            names: self.names.clone(),
            stream: None,
            view: View::default(),
        };
        // The first snapshot is complete before returning, so any later write arrives as a change.
        let initial = listener
            .open(true, LISTEN_TIMEOUT)
            .await
            .map_err(StoreError::Unavailable)?;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        tokio::spawn(listener.run(tx, initial));
        Ok(rx)
    }
}

fn sort(fields: Fields) -> Fields {
    let sorted: BTreeMap<String, Json> = fields.into_iter().collect();
    sorted.into_iter().collect()
}

// ---- the listener -------------------------------------------------------

/// The listen protocol's state for one target. Changes are buffered until the
/// server marks a consistent snapshot (a global NO_CHANGE with a read time, after
/// CURRENT), so a watcher never sees half of a multi-document commit.
#[derive(Default)]
struct View {
    /// What the watcher has been told: id -> revision.
    known: HashMap<String, Revision>,
    /// Changes since the last snapshot; `None` is a removal.
    pending: BTreeMap<String, Option<StoredRollout>>,
    /// The pending changes are a complete state (a new stream, or after RESET).
    reset: bool,
    /// The target has caught up (CURRENT) on this stream.
    current: bool,
}

impl View {
    /// A new stream sends the whole state again.
    fn restart(&mut self) {
        self.pending.clear();
        self.reset = true;
        self.current = false;
    }

    /// Takes one message; `Ok(true)` when a consistent snapshot is ready.
    fn hear(&mut self, response: fs::ListenResponse) -> Result<bool, String> {
        use fs::listen_response::ResponseType;
        let ours = |ids: &[i32]| ids.is_empty() || ids.contains(&TARGET_ID);
        match response.response_type {
            Some(ResponseType::TargetChange(tc)) => {
                match TargetChangeType::try_from(tc.target_change_type) {
                    Ok(TargetChangeType::NoChange) => {
                        return Ok(tc.target_ids.is_empty()
                            && tc.read_time.is_some()
                            && self.current);
                    }
                    Ok(TargetChangeType::Current) if ours(&tc.target_ids) => self.current = true,
                    Ok(TargetChangeType::Reset) if ours(&tc.target_ids) => {
                        self.pending.clear();
                        self.reset = true;
                    }
                    Ok(TargetChangeType::Remove) if ours(&tc.target_ids) => {
                        let why = tc.cause.map(|c| c.message).unwrap_or_default();
                        return Err(format!("the server stopped the listen: {why}"));
                    }
                    _ => {}
                }
            }
            Some(ResponseType::DocumentChange(dc)) => {
                if let Some(doc) = dc.document {
                    let id = doc_id(&doc.name).to_string();
                    if dc.target_ids.contains(&TARGET_ID) {
                        self.pending.insert(id, Some(stored(doc)));
                    } else if dc.removed_target_ids.contains(&TARGET_ID) {
                        self.pending.insert(id, None);
                    }
                }
            }
            Some(ResponseType::DocumentDelete(d)) => {
                self.pending.insert(doc_id(&d.document).to_string(), None);
            }
            Some(ResponseType::DocumentRemove(d)) => {
                self.pending.insert(doc_id(&d.document).to_string(), None);
            }
            Some(ResponseType::Filter(f)) if f.target_id == TARGET_ID => {
                let have = self.len();
                if usize::try_from(f.count).ok() != Some(have) {
                    return Err(format!(
                        "the listen lost track ({} documents on the server, {have} here)",
                        f.count
                    ));
                }
            }
            _ => {}
        }
        Ok(false)
    }

    /// How many documents the target holds once the pending changes apply.
    fn len(&self) -> usize {
        let mut ids: HashSet<&String> = if self.reset {
            HashSet::new()
        } else {
            self.known.keys().collect()
        };
        for (id, doc) in &self.pending {
            if doc.is_some() {
                ids.insert(id);
            } else {
                ids.remove(id);
            }
        }
        ids.len()
    }

    /// The changes since the last snapshot: every document if `full`, else only new revisions.
    fn snapshot(&mut self, full: bool) -> Vec<StoreChange> {
        let pending = std::mem::take(&mut self.pending);
        let mut removed: Vec<String> = if self.reset {
            self.known
                .keys()
                .filter(|id| !matches!(pending.get(*id), Some(Some(_))))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let mut changes = Vec::new();
        for (id, doc) in pending {
            match doc {
                Some(doc) if full || self.known.get(&id) != Some(&doc.revision) => {
                    self.known.insert(id, doc.revision.clone());
                    changes.push(StoreChange::Upserted(doc));
                }
                Some(_) => {}
                None if !self.reset && self.known.contains_key(&id) => removed.push(id),
                None => {}
            }
        }
        removed.sort();
        for id in removed {
            self.known.remove(&id);
            changes.push(StoreChange::Removed(id));
        }
        self.reset = false;
        changes
    }
}

/// One Listen stream on the rollouts collection, reopened when it breaks.
struct Listener {
    client: Client,
    names: Arc<Names>,
    stream: Option<Streaming<fs::ListenResponse>>,
    view: View,
}

impl Listener {
    /// Opens a fresh stream (no resume token: a full state is cheap for a rollouts
    /// collection and is right even after the server lost its data) and returns
    /// its first snapshot.
    async fn open(&mut self, full: bool, within: Duration) -> Result<Vec<StoreChange>, String> {
        self.stream = None;
        self.view.restart();
        let opening = async {
            let query = fs::StructuredQuery {
                from: collection(&self.names.collection),
                ..Default::default()
            };
            let request = fs::ListenRequest {
                database: self.names.database_path(),
                target_change: Some(fs::listen_request::TargetChange::AddTarget(fs::Target {
                    target_id: TARGET_ID,
                    target_type: Some(fs::target::TargetType::Query(fs::target::QueryTarget {
                        parent: self.names.documents(),
                        query_type: Some(fs::target::query_target::QueryType::StructuredQuery(
                            query,
                        )),
                    })),
                    ..Default::default()
                })),
                ..Default::default()
            };
            // The request stream stays open: closing it would end the listen.
            let requests = tokio_stream::once(request).chain(tokio_stream::pending());
            let stream = self
                .client
                .listen(requests)
                .await
                .map_err(|s| message(self.names.error("listening", &s)))?
                .into_inner();
            self.stream = Some(stream);
            self.next_snapshot(full).await
        };
        let result = tokio::time::timeout(within, opening)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "listening on {}: no snapshot within {within:?}; {}",
                    self.names.place(),
                    self.names.reach_hint()
                ))
            });
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn next_snapshot(&mut self, full: bool) -> Result<Vec<StoreChange>, String> {
        loop {
            let stream = self.stream.as_mut().ok_or("not listening")?;
            let response = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return Err(format!("{} ended the listen stream", self.names.place())),
                Err(s) => return Err(message(self.names.error("listening", &s))),
            };
            match self.view.hear(response) {
                Ok(true) => return Ok(self.view.snapshot(full)),
                Ok(false) => {}
                Err(e) => return Err(format!("{}: {e}", self.names.place())),
            }
        }
    }

    async fn run(mut self, tx: mpsc::Sender<StoreChange>, initial: Vec<StoreChange>) {
        if !send_all(&tx, initial).await {
            return;
        }
        loop {
            let broken = tokio::select! {
                _ = tx.closed() => return,
                next = self.next_snapshot(false) => match next {
                    Ok(changes) => {
                        if !send_all(&tx, changes).await {
                            return;
                        }
                        continue;
                    }
                    Err(e) => e,
                },
            };
            tracing::warn!("firestore listener: {broken}");
            // One quiet retry: servers end long-lived streams, and a lost-track filter
            // needs a fresh listen; neither is worth alarming the operator.
            let quiet = tokio::select! {
                _ = tx.closed() => return,
                r = self.open(false, QUIET_REOPEN) => r,
            };
            if let Ok(changes) = quiet {
                if !send_all(&tx, changes).await {
                    return;
                }
                continue;
            }
            if tx.send(StoreChange::Disconnected(broken)).await.is_err() {
                return;
            }
            let mut backoff = MIN_BACKOFF;
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(jitter(backoff)) => {}
                }
                let again = tokio::select! {
                    _ = tx.closed() => return,
                    r = self.open(true, LISTEN_TIMEOUT) => r,
                };
                match again {
                    Ok(changes) => {
                        tracing::info!("firestore listener reconnected");
                        if tx.send(StoreChange::Reconnected).await.is_err()
                            || !send_all(&tx, changes).await
                        {
                            return;
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::debug!("firestore listener still disconnected: {e}");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
    }
}

fn message(e: StoreError) -> String {
    match e {
        StoreError::Unavailable(m) | StoreError::Other(m) => m,
        e => e.to_string(),
    }
}

async fn send_all(tx: &mpsc::Sender<StoreChange>, changes: Vec<StoreChange>) -> bool {
    for change in changes {
        if tx.send(change).await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_round_trips_and_rejects_non_canonical_text() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\x00\xff\x10hello"] {
            let text = base64(bytes);
            assert_eq!(unbase64(&text).as_deref(), Some(bytes), "{text}");
        }
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(unbase64("aGVsbG8"), None, "padding is required");
        assert_eq!(unbase64("not base64!"), None);
    }

    #[test]
    fn values_round_trip_with_their_types() {
        let doc = json!({
            "i": 0, "big": 1234567890123_i64, "d": 0.25, "whole": 1.0, "s": "x", "n": null,
            "b": true, "a": [1, "two", {"k": [3.5]}], "m": {"z": 1, "a": {"b": null}},
            "bytes": {"bytesValue": "aGVsbG8="},
            "ref": {"referenceValue": "projects/p/databases/(default)/documents/a/b"},
            "geo": {"geoPointValue": {"latitude": 1.5, "longitude": -2.25}},
            "notBytes": {"bytesValue": "***"},
        });
        let back = from_value(&to_value(&doc));
        assert_eq!(back, doc);
        assert!(back["whole"].is_f64() && back["i"].is_i64());
        let bytes = to_value(&doc["bytes"]);
        assert!(matches!(bytes.value_type, Some(ValueType::BytesValue(ref b)) if b == b"hello"));
        let not_bytes = to_value(&doc["notBytes"]);
        assert!(matches!(not_bytes.value_type, Some(ValueType::MapValue(_))));
    }

    #[test]
    fn timestamp_fields_become_timestamps_and_read_back_exactly() {
        for text in [
            "2025-12-03T10:00:00Z",
            "2025-12-03T10:00:00.250Z",
            "2025-12-03T10:00:00.123456Z",
        ] {
            let v = rollout_field(field::STARTED_AT, &json!(text));
            assert!(matches!(v.value_type, Some(ValueType::TimestampValue(_))));
            assert_eq!(from_value(&v), json!(text));
        }
        let offset = rollout_field(field::STARTED_AT, &json!("2025-12-03T11:00:00+01:00"));
        assert_eq!(from_value(&offset), json!("2025-12-03T10:00:00Z"));
        let nanos = rollout_field(field::STARTED_AT, &json!("2025-12-03T10:00:00.123456789Z"));
        assert_eq!(from_value(&nanos), json!("2025-12-03T10:00:00.123456Z"));
        // Not RFC 3339, or not a timestamp field: stays text.
        let bad = rollout_field(field::STARTED_AT, &json!("yesterday"));
        assert!(matches!(bad.value_type, Some(ValueType::StringValue(_))));
        let other = rollout_field("note", &json!("2025-12-03T10:00:00Z"));
        assert!(matches!(other.value_type, Some(ValueType::StringValue(_))));
    }

    #[test]
    fn revisions_keep_nanoseconds() {
        let t = Timestamp {
            seconds: 1_750_000_000,
            nanos: 123_456_000,
        };
        let r = revision_of(Some(&t));
        assert_eq!(r.0, "2025-06-15T15:06:40.123456000Z");
        assert_eq!(parse_revision(&r), Some(t));
        assert_eq!(parse_revision(&Revision("7".into())), None);
    }

    #[test]
    fn field_paths_are_quoted_when_needed() {
        assert_eq!(field_path("rolloutPercentage"), "rolloutPercentage");
        assert_eq!(field_path("_x1"), "_x1");
        assert_eq!(field_path("a.b"), "`a.b`");
        assert_eq!(field_path("1st"), "`1st`");
        assert_eq!(field_path("we`ird\\"), "`we\\`ird\\\\`");
    }

    fn heard(kind: TargetChangeType, ids: &[i32], read_time: bool) -> fs::ListenResponse {
        fs::ListenResponse {
            response_type: Some(fs::listen_response::ResponseType::TargetChange(
                fs::TargetChange {
                    target_change_type: kind as i32,
                    target_ids: ids.to_vec(),
                    read_time: read_time.then(Timestamp::default),
                    ..Default::default()
                },
            )),
        }
    }

    fn changed(id: &str, second: i64) -> fs::ListenResponse {
        fs::ListenResponse {
            response_type: Some(fs::listen_response::ResponseType::DocumentChange(
                fs::DocumentChange {
                    document: Some(fs::Document {
                        name: format!("projects/p/databases/(default)/documents/c/{id}"),
                        update_time: Some(Timestamp {
                            seconds: second,
                            nanos: 0,
                        }),
                        ..Default::default()
                    }),
                    target_ids: vec![TARGET_ID],
                    removed_target_ids: vec![],
                },
            )),
        }
    }

    fn deleted(id: &str) -> fs::ListenResponse {
        fs::ListenResponse {
            response_type: Some(fs::listen_response::ResponseType::DocumentDelete(
                fs::DocumentDelete {
                    document: format!("projects/p/databases/(default)/documents/c/{id}"),
                    ..Default::default()
                },
            )),
        }
    }

    fn filter(count: i32) -> fs::ListenResponse {
        fs::ListenResponse {
            response_type: Some(fs::listen_response::ResponseType::Filter(
                fs::ExistenceFilter {
                    target_id: TARGET_ID,
                    count,
                    ..Default::default()
                },
            )),
        }
    }

    /// Feeds messages; returns the snapshot the last one completes, if any.
    fn feed(
        view: &mut View,
        full: bool,
        messages: Vec<fs::ListenResponse>,
    ) -> Option<Vec<StoreChange>> {
        let mut ready = false;
        for m in messages {
            ready = view.hear(m).expect("a healthy stream");
        }
        ready.then(|| view.snapshot(full))
    }

    fn ids(changes: &[StoreChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                StoreChange::Upserted(d) => format!("+{}@{}", d.id, &d.revision.0[17..19]),
                StoreChange::Removed(id) => format!("-{id}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_view_waits_for_current_and_a_global_no_change() {
        use TargetChangeType::*;
        let mut view = View::default();
        view.restart();
        let initial = vec![
            heard(Add, &[TARGET_ID], false),
            changed("a", 1),
            changed("b", 2),
        ];
        assert!(feed(&mut view, true, initial).is_none());
        // Not yet current; then a targeted NO_CHANGE is not a snapshot either.
        assert!(feed(&mut view, true, vec![heard(NoChange, &[], true)]).is_none());
        assert!(
            feed(
                &mut view,
                true,
                vec![
                    heard(Current, &[TARGET_ID], true),
                    heard(NoChange, &[TARGET_ID], true)
                ]
            )
            .is_none()
        );
        let first = feed(&mut view, true, vec![heard(NoChange, &[], true)]).unwrap();
        assert_eq!(ids(&first), ["+a@01", "+b@02"]);

        // One batch: a changed, b deleted, c created and deleted again, a re-sent unchanged.
        let batch = vec![
            changed("a", 3),
            deleted("b"),
            changed("c", 4),
            deleted("c"),
            heard(NoChange, &[], true),
        ];
        assert_eq!(
            ids(&feed(&mut view, false, batch).unwrap()),
            ["+a@03", "-b"]
        );
        let same = vec![changed("a", 3), heard(NoChange, &[], true)];
        assert!(feed(&mut view, false, same).unwrap().is_empty());
    }

    #[test]
    fn a_reset_resends_the_state_and_drops_what_is_gone() {
        use TargetChangeType::*;
        let mut view = View::default();
        view.restart();
        let initial = vec![
            changed("a", 1),
            changed("b", 2),
            heard(Current, &[], true),
            heard(NoChange, &[], true),
        ];
        assert_eq!(feed(&mut view, true, initial).unwrap().len(), 2);
        // Half-sent changes before the reset are discarded with it.
        let after_reset = vec![
            changed("x", 9),
            heard(Reset, &[TARGET_ID], false),
            changed("b", 2),
            changed("c", 5),
            heard(Current, &[TARGET_ID], true),
            heard(NoChange, &[], true),
        ];
        assert_eq!(
            ids(&feed(&mut view, false, after_reset).unwrap()),
            ["+c@05", "-a"]
        );
        // A reconnect's full resync repeats everything that is there.
        view.restart();
        let resync = vec![
            changed("b", 2),
            changed("c", 5),
            heard(Current, &[], true),
            heard(NoChange, &[], true),
        ];
        assert_eq!(
            ids(&feed(&mut view, true, resync).unwrap()),
            ["+b@02", "+c@05"]
        );
    }

    #[test]
    fn a_wrong_existence_filter_or_a_removed_target_breaks_the_stream() {
        use TargetChangeType::*;
        let mut view = View::default();
        view.restart();
        let initial = vec![
            changed("a", 1),
            changed("b", 2),
            heard(Current, &[], true),
            heard(NoChange, &[], true),
        ];
        feed(&mut view, true, initial).unwrap();
        assert_eq!(view.hear(filter(2)), Ok(false));
        view.hear(deleted("a")).unwrap();
        assert_eq!(view.hear(filter(1)), Ok(false), "pending changes count");
        assert!(view.hear(filter(3)).unwrap_err().contains("lost track"));
        let mut removed = heard(Remove, &[TARGET_ID], false);
        if let Some(fs::listen_response::ResponseType::TargetChange(tc)) =
            &mut removed.response_type
        {
            tc.cause = Some(firestore::gcloud_sdk::google::rpc::Status {
                code: 7,
                message: "permission denied".into(),
                details: vec![],
            });
        }
        assert!(
            view.hear(removed)
                .unwrap_err()
                .contains("permission denied")
        );
    }
}
