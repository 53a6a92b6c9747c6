//! A tiny HTTP/1.1 server on a free loopback port: one thread per connection, every
//! request logged, answers from a closure. Enough for fakes of Cloud Monitoring, an OAuth
//! token endpoint and a Prometheus exporter.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn params(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Sent after `body`, `.1` times, with no Content-Length: an answer that only ends when
    /// the connection closes, of a size the client cannot know in advance.
    pub then_repeat: Option<(String, usize)>,
}

impl Response {
    pub fn json(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
            then_repeat: None,
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "text/plain; version=0.0.4".into())],
            body: body.into(),
            then_repeat: None,
        }
    }

    /// `head`, then `chunk` `times` times, streamed without a Content-Length.
    pub fn streamed(
        status: u16,
        head: impl Into<String>,
        chunk: impl Into<String>,
        times: usize,
    ) -> Response {
        let mut r = Response::json(status, head);
        r.then_repeat = Some((chunk.into(), times));
        r
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

pub struct FakeServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    traffic: Arc<Traffic>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let traffic = Arc::new(Traffic::default());
        let (l, f, m, s, t) = (
            log.clone(),
            in_flight.clone(),
            max_in_flight.clone(),
            stop.clone(),
            traffic.clone(),
        );
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, l, f, m, t) = (handler.clone(), l.clone(), f.clone(), m.clone(), t.clone());
                std::thread::spawn(move || serve(conn, &*h, &l, &f, &m, &t));
            }
        });
        FakeServer {
            addr,
            log,
            in_flight,
            max_in_flight,
            traffic,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Most requests that were being answered at one moment.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Body bytes the client accepted (written without error), over all answers.
    pub fn body_bytes_sent(&self) -> usize {
        self.traffic.body_bytes.load(Ordering::SeqCst)
    }

    /// Answers completely written or cut off by the client.
    pub fn answers_done(&self) -> usize {
        self.traffic.done.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
struct Traffic {
    body_bytes: AtomicUsize,
    done: AtomicUsize,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<Request>>,
    in_flight: &AtomicUsize,
    max_in_flight: &AtomicUsize,
    traffic: &Traffic,
) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let url = reqwest::Url::parse(&format!("http://fake{target}")).expect("request target");
    let req = Request {
        method,
        path: url.path().to_string(),
        query: url.query_pairs().into_owned().collect(),
        headers,
        body,
    };
    log.lock().unwrap().push(req.clone());
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    max_in_flight.fetch_max(now, Ordering::SeqCst);
    let resp = handler(&req);
    in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    if resp.then_repeat.is_none() {
        out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    out.push_str("Connection: close\r\n");
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut conn = conn;
    let mut send = |bytes: &[u8], body: bool| {
        let ok = conn.write_all(bytes).is_ok();
        if ok && body {
            traffic.body_bytes.fetch_add(bytes.len(), Ordering::SeqCst);
        }
        ok
    };
    if send(out.as_bytes(), false)
        && send(resp.body.as_bytes(), true)
        && let Some((chunk, times)) = &resp.then_repeat
    {
        // Stops as soon as the client hangs up.
        for _ in 0..*times {
            if !send(chunk.as_bytes(), true) {
                break;
            }
        }
    }
    let _ = conn.flush();
    drop(conn);
    traffic.done.fetch_add(1, Ordering::SeqCst);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
