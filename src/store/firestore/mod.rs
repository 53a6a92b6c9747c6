//! Firestore store: rollouts in `collection`, audit events in `events_collection`,
//! leases in `leases_collection`.
//!
//! The `firestore` crate builds the authenticated channel (Application Default
//! Credentials, or the emulator); the calls themselves use its re-exported raw
//! Firestore v1 API, because this store needs exact control over value types,
//! field masks, preconditions and the listen protocol (its listener retries
//! silently, so it could not report disconnects).
//!
//! On real Firestore `list_events` needs two composite indexes on
//! `events_collection`: `rolloutId` ascending with `committedAt` descending, and
//! `rolloutId` ascending with `at` descending (the error names a link that creates
//! each). The emulator needs none.

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
use tokio::sync::{Mutex, mpsc};

use super::{
    Lease, LeaseOutcome, Patch, Revision, RolloutStore, StoreChange, StoreError, StoreResult,
    StoredRollout,
};
use crate::domain::event::Event;
use crate::domain::freeze::Freeze;
use crate::domain::rollout::{Fields, field};
use crate::store::StoreConfig;

mod listen;
mod values;

use listen::*;
use values::*;

type Client = FirestoreClient<GoogleAuthMiddleware>;

pub const EMULATOR_ENV: &str = "FIRESTORE_EMULATOR_HOST";

/// Bounds every unary call, so a frozen server or a black-holed network is an error
/// rather than a hang. Firestore answers in well under a second when it answers at all.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Opening a listen stream and receiving its first consistent snapshot.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(15);
/// The same for the one quiet reopen after a break, before the watcher is told.
const QUIET_REOPEN: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const TX_ATTEMPTS: u32 = 25;
const WATCH_BUFFER: usize = 256;
const TARGET_ID: i32 = 1;
/// The client's time of an event (`Event::at`).
const EVENT_TIME: &str = "at";
/// The server's time of the commit that wrote an event; events written by
/// earlier versions lack it.
const EVENT_COMMITTED: &str = "committedAt";
const EVENT_ROLLOUT: &str = "rolloutId";
/// The freeze flag's document id in the control collection.
const FREEZE_DOC: &str = "freeze";

/// Where the store lives, and how to say so in messages.
#[derive(Debug)]
struct Names {
    project: String,
    database: String,
    collection: String,
    events: String,
    leases: String,
    /// The collection of global switches (the freeze document).
    control: String,
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

    /// The freeze flag's document.
    fn freeze(&self) -> String {
        self.doc(&self.control, FREEZE_DOC)
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

/// The connection: dialled on first use, and again after it stopped answering.
pub(super) struct Link {
    names: Arc<Names>,
    db: Mutex<Option<FirestoreDb>>,
}

impl Link {
    /// The lock is not held while dialling: a call must not wait out another's dial.
    async fn client(&self) -> StoreResult<Client> {
        if let Some(db) = self.db.lock().await.as_ref() {
            return Ok(db.client().get());
        }
        let db = connect(&self.names).await?;
        let client = db.client().get();
        self.db.lock().await.get_or_insert(db);
        Ok(client)
    }

    /// A connection that stopped answering may lead into a black hole, which the
    /// channel's own keepalive would notice only minutes later: the next call dials anew.
    /// (If someone is dialling right now, that connection is new anyway.)
    fn redial(&self) {
        if let Ok(mut db) = self.db.try_lock() {
            *db = None;
        }
    }
}

/// Rollouts in Google Firestore (or its emulator). Connects on first use, so
/// opening never blocks and a failed connection is retried by the next call.
pub struct FirestoreStore {
    names: Arc<Names>,
    link: Arc<Link>,
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
        let names = Arc::new(Names {
            project,
            database: config.database.clone(),
            collection: config.collection.clone(),
            events: config.events_collection.clone(),
            leases: config.leases_collection.clone(),
            control: config.control_collection.clone(),
            emulator,
        });
        Ok(FirestoreStore {
            link: Arc::new(Link {
                names: names.clone(),
                db: Mutex::new(None),
            }),
            names,
        })
    }

    async fn client(&self) -> StoreResult<Client> {
        self.link.client().await
    }

    fn error(&self, what: &str, s: &Status) -> StoreError {
        if s.code() == Code::DeadlineExceeded {
            self.link.redial();
        }
        self.names.error(what, s)
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
            .map_err(|s| self.error(&format!("reading rollout '{id}'"), &s))
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
        // The commit time the server adds: its name, and a timestamp's 8 bytes.
        let committed = EVENT_COMMITTED.len() + 1 + 8;
        fits(
            &format!("rollout '{}': the audit event", event.rollout_id),
            &name,
            &fields,
            committed,
        )?;
        let mut write = update(name, fields, None, exists(false));
        // Commit order, whatever the writers' clocks say: the server's time, set in
        // the same commit as the document the event describes.
        write.update_transforms = vec![fs::document_transform::FieldTransform {
            field_path: EVENT_COMMITTED.to_string(),
            transform_type: Some(
                fs::document_transform::field_transform::TransformType::SetToServerValue(
                    fs::document_transform::field_transform::ServerValue::RequestTime as i32,
                ),
            ),
        }];
        Ok(write)
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
                .map_err(|s| self.error(what, &s))?;
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
                Err(s) => return Err(self.error(what, &s)),
            }
        }
    }

    /// A compare-and-set patch; with `unless_frozen` the same commit also requires that the
    /// freeze document does not exist (a delete of it with the precondition `exists: false`:
    /// a no-op that fails the whole commit, ALREADY_EXISTS, once someone has frozen), so a
    /// freeze set a moment earlier stops the write without a transaction's locks.
    async fn patch_checked(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
        unless_frozen: bool,
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
        let mut after = current.fields.clone();
        normalized.apply_to(&mut after);
        let after: HashMap<String, fs::Value> = after
            .iter()
            .map(|(k, v)| (k.clone(), rollout_field(k, v)))
            .collect();
        fits(&format!("rollout '{id}': the document"), &name, &after, 0)?;
        let precondition =
            fs::precondition::ConditionType::UpdateTime(expected_time.unwrap_or_default());
        let mut writes = vec![
            update(name, values, Some(mask), precondition),
            self.event_write(event)?,
        ];
        let freeze_name = self.names.freeze();
        if unless_frozen {
            writes.push(fs::Write {
                operation: Some(fs::write::Operation::Delete(freeze_name.clone())),
                current_document: Some(fs::Precondition {
                    condition_type: Some(exists(false)),
                }),
                ..Default::default()
            });
        }
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
                    Code::FailedPrecondition | Code::NotFound | Code::Aborted | Code::AlreadyExists
                ) =>
            {
                if unless_frozen
                    && let Some(doc) = get_doc(&mut client, &freeze_name, None)
                        .await
                        .map_err(|s| self.error("reading the freeze flag", &s))?
                {
                    return Err(StoreError::Frozen(freeze_of(&doc)));
                }
                match self.read(&mut client, id).await? {
                    Some(now) => Err(conflict(now)),
                    None => Err(StoreError::NotFound(id.to_string())),
                }
            }
            Err(s) => Err(self.error(
                &format!(
                    "writing rollout '{id}' (document and event are written together or not at all)"
                ),
                &s,
            )),
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
        timed(run).await.map_err(|s| self.error(what, &s))
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
        fits(&format!("rollout '{id}': the document"), &name, &values, 0)?;
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
                    None => Err(self.error(&format!("creating rollout '{id}'"), &s)),
                }
            }
            Err(s) => Err(self.error(&format!("creating rollout '{id}'"), &s)),
        }
    }

    async fn patch(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
    ) -> StoreResult<StoredRollout> {
        self.patch_checked(id, expected, patch, event, false).await
    }

    async fn patch_unless_frozen(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
    ) -> StoreResult<StoredRollout> {
        self.patch_checked(id, expected, patch, event, true).await
    }

    async fn freeze(&self) -> StoreResult<Option<Freeze>> {
        let mut client = self.client().await?;
        let name = self.names.freeze();
        get_doc(&mut client, &name, None)
            .await
            .map(|doc| doc.as_ref().map(freeze_of))
            .map_err(|s| self.error("reading the freeze flag", &s))
    }

    async fn set_freeze(&self, freeze: Option<&Freeze>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let name = self.names.freeze();
        let write = match freeze {
            Some(f) => fs::Write {
                operation: Some(fs::write::Operation::Update(fs::Document {
                    name,
                    fields: freeze_fields(f),
                    ..Default::default()
                })),
                ..Default::default()
            },
            None => fs::Write {
                operation: Some(fs::write::Operation::Delete(name)),
                ..Default::default()
            },
        };
        self.commit_retrying(&mut client, vec![write])
            .await
            .map(|_| ())
            .map_err(|s| self.error("writing the freeze flag", &s))
    }

    async fn append_event(&self, event: &Event) -> StoreResult<()> {
        let mut client = self.client().await?;
        let writes = vec![self.event_write(event)?];
        self.commit_retrying(&mut client, writes)
            .await
            .map(|_| ())
            .map_err(|s| self.error("appending an event", &s))
    }

    async fn list_events(&self, rollout_id: &str, limit: usize) -> StoreResult<Vec<Event>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let newest_by = |time: &str| fs::StructuredQuery {
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
                order(time, Direction::Descending),
                order("__name__", Direction::Descending),
            ],
            limit: Some(i32::try_from(limit).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        // Ordering by the commit time leaves out events written before it was recorded
        // (a query skips documents without its order field), so the newest by client
        // time come too, and the two lists merge.
        let what = format!("listing events of '{rollout_id}'");
        let (committed, written) = tokio::try_join!(
            self.query(&what, newest_by(EVENT_COMMITTED)),
            self.query(&what, newest_by(EVENT_TIME)),
        )?;
        let mut docs: BTreeMap<(EventOrder, String), fs::Document> = BTreeMap::new();
        for doc in committed.into_iter().chain(written) {
            docs.insert((event_order(&doc), doc.name.clone()), doc);
        }
        Ok(docs
            .values()
            .rev()
            .take(limit)
            .map(|doc| event_of(rollout_id, doc))
            .collect())
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
            .map_err(|s| self.error(&what, &s))?;
        doc.map(|d| lease_of(rollout_id, &d))
            .transpose()
            .map_err(|s| self.error(&what, &s))
    }

    async fn watch(&self) -> StoreResult<mpsc::Receiver<StoreChange>> {
        let mut listener = Listener::new(self.link.clone(), self.names.clone());
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
