//! The listen protocol: one stream on the rollouts collection, its snapshots, and its breaks.

use std::time::Instant;

use super::*;

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
            Some(ResponseType::DocumentDelete(d)) if ours(&d.removed_target_ids) => {
                self.pending.insert(doc_id(&d.document).to_string(), None);
            }
            Some(ResponseType::DocumentRemove(d)) if ours(&d.removed_target_ids) => {
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

/// Nothing heard for this long: ask the server something on the stream itself.
const QUIET: Duration = Duration::from_secs(10);
/// Nothing heard for this long, the question included: the store is gone, whatever
/// the connection says (a frozen server or a black-holed network keeps it open).
const SILENCE: Duration = Duration::from_secs(20);
/// A collection nobody writes: listening to it costs a read and answers at once.
const HEARTBEAT_COLLECTION: &str = "rollout-tui-heartbeat";

/// Why a stream stopped being useful.
enum Break {
    /// It failed or ended; the message says how.
    Failed(String),
    /// Nothing came for `SILENCE`, though a heartbeat asked.
    Silent,
}

/// One Listen stream on the rollouts collection, reopened when it breaks.
pub(super) struct Listener {
    link: Arc<Link>,
    names: Arc<Names>,
    stream: Option<Streaming<fs::ListenResponse>>,
    /// The request side: it stays open while the stream lives, and carries heartbeats.
    requests: Option<futures::channel::mpsc::UnboundedSender<fs::ListenRequest>>,
    view: View,
    last_heard: Instant,
    /// A heartbeat is out and unanswered.
    asked: bool,
    /// Heartbeat targets get fresh ids, so one never meets an earlier one's removal.
    next_heartbeat: i32,
}

impl Listener {
    pub(super) fn new(link: Arc<Link>, names: Arc<Names>) -> Listener {
        Listener {
            link,
            names,
            stream: None,
            requests: None,
            view: View::default(),
            last_heard: Instant::now(),
            asked: false,
            next_heartbeat: TARGET_ID + 1,
        }
    }

    fn query_target(&self, target_id: i32, collection_id: &str) -> fs::ListenRequest {
        let query = fs::StructuredQuery {
            from: collection(collection_id),
            ..Default::default()
        };
        fs::ListenRequest {
            database: self.names.database_path(),
            target_change: Some(fs::listen_request::TargetChange::AddTarget(fs::Target {
                target_id,
                target_type: Some(fs::target::TargetType::Query(fs::target::QueryTarget {
                    parent: self.names.documents(),
                    query_type: Some(fs::target::query_target::QueryType::StructuredQuery(query)),
                })),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    /// Adds and at once removes a target on an empty collection: the server answers
    /// on this very stream (ADD, CURRENT, NO_CHANGE, REMOVE), which an idle listen
    /// never does by itself, and the view ignores targets other than its own.
    fn heartbeat(&mut self) {
        let id = self.next_heartbeat;
        self.next_heartbeat = id.checked_add(1).unwrap_or(TARGET_ID + 1);
        let add = self.query_target(id, HEARTBEAT_COLLECTION);
        let remove = fs::ListenRequest {
            database: self.names.database_path(),
            target_change: Some(fs::listen_request::TargetChange::RemoveTarget(id)),
            ..Default::default()
        };
        if let Some(requests) = &self.requests {
            // A closed request side means the stream is gone; the silence will say so.
            let _ = requests.unbounded_send(add);
            let _ = requests.unbounded_send(remove);
        }
        self.asked = true;
    }

    fn silence(&self) -> String {
        format!(
            "no word from the store for {} s ({} stopped answering); {}",
            self.last_heard.elapsed().as_secs(),
            self.names.place(),
            self.names.reach_hint()
        )
    }

    fn describe(&self, b: Break) -> String {
        match b {
            Break::Failed(why) => why,
            Break::Silent => self.silence(),
        }
    }

    /// Opens a fresh stream (no resume token: a full state is cheap for a rollouts
    /// collection and is right even after the server lost its data) and returns
    /// its first snapshot.
    pub(super) async fn open(
        &mut self,
        full: bool,
        within: Duration,
    ) -> Result<Vec<StoreChange>, String> {
        self.stream = None;
        self.requests = None;
        self.view.restart();
        self.last_heard = Instant::now();
        self.asked = false;
        let opening = async {
            let mut client = self
                .link
                .client()
                .await
                .map_err(|e| Break::Failed(message(e)))?;
            let (requests, outgoing) = futures::channel::mpsc::unbounded();
            requests
                .unbounded_send(self.query_target(TARGET_ID, &self.names.collection))
                .map_err(|e| Break::Failed(e.to_string()))?;
            let stream = client
                .listen(outgoing)
                .await
                .map_err(|s| Break::Failed(message(self.names.error("listening", &s))))?
                .into_inner();
            self.stream = Some(stream);
            self.requests = Some(requests);
            self.next_snapshot(full).await
        };
        let result = match tokio::time::timeout(within, opening).await {
            Ok(Ok(changes)) => return Ok(changes),
            Ok(Err(b)) => self.describe(b),
            Err(_) => {
                self.link.redial();
                format!(
                    "listening on {}: no snapshot within {within:?}; {}",
                    self.names.place(),
                    self.names.reach_hint()
                )
            }
        };
        self.stream = None;
        self.requests = None;
        Err(result)
    }

    async fn next_snapshot(&mut self, full: bool) -> Result<Vec<StoreChange>, Break> {
        loop {
            let wait = if self.asked { SILENCE } else { QUIET };
            let deadline = tokio::time::Instant::from_std(self.last_heard + wait);
            let stream = self
                .stream
                .as_mut()
                .ok_or_else(|| Break::Failed("not listening".into()))?;
            let response = match tokio::time::timeout_at(deadline, stream.message()).await {
                Err(_) if self.asked => return Err(Break::Silent),
                Err(_) => {
                    self.heartbeat();
                    continue;
                }
                Ok(Ok(Some(r))) => r,
                Ok(Ok(None)) => {
                    return Err(Break::Failed(format!(
                        "{} ended the listen stream",
                        self.names.place()
                    )));
                }
                Ok(Err(s)) => {
                    return Err(Break::Failed(message(self.names.error("listening", &s))));
                }
            };
            self.last_heard = Instant::now();
            self.asked = false;
            match self.view.hear(response) {
                Ok(true) => return Ok(self.view.snapshot(full)),
                Ok(false) => {}
                Err(e) => return Err(Break::Failed(format!("{}: {e}", self.names.place()))),
            }
        }
    }

    pub(super) async fn run(mut self, tx: mpsc::Sender<StoreChange>, initial: Vec<StoreChange>) {
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
                    Err(b) => b,
                },
            };
            let why = match broken {
                // The silence took long enough to notice: say so now, and dial anew.
                Break::Silent => {
                    self.link.redial();
                    self.silence()
                }
                Break::Failed(why) => {
                    tracing::warn!("firestore listener: {why}");
                    // One quiet retry: servers end long-lived streams, and a lost-track
                    // filter needs a fresh listen; neither is worth alarming the operator.
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
                    why
                }
            };
            tracing::warn!("firestore listener disconnected: {why}");
            if tx.send(StoreChange::Disconnected(why)).await.is_err() {
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

    #[test]
    fn heartbeat_targets_leave_the_view_alone() {
        use TargetChangeType::*;
        let mut view = View::default();
        view.restart();
        let initial = vec![
            changed("a", 1),
            heard(Current, &[TARGET_ID], true),
            heard(NoChange, &[], true),
        ];
        assert_eq!(ids(&feed(&mut view, true, initial).unwrap()), ["+a@01"]);
        let beat = TARGET_ID + 1;
        let mut gone_elsewhere = deleted("a");
        if let Some(fs::listen_response::ResponseType::DocumentDelete(d)) =
            &mut gone_elsewhere.response_type
        {
            d.removed_target_ids = vec![beat];
        }
        let answer = vec![
            heard(Add, &[beat], false),
            gone_elsewhere,
            heard(Current, &[beat], true),
            heard(NoChange, &[], true),
        ];
        assert_eq!(feed(&mut view, false, answer), Some(vec![]));
        assert_eq!(view.hear(heard(Remove, &[beat], false)), Ok(false));
        assert_eq!(view.len(), 1, "a is still there");
    }
}
