//! A fault-injecting, recording HTTP/1.1 proxy between the binary (or a test's SDK client) and
//! moto: the only way to show AWS errors, throttling, latency, lost connections, slow IAM
//! propagation and "the call happened but the answer was lost" against a real server.
//!
//! [`FaultProxy::start`] listens on 127.0.0.1:0; point `AWS_ENDPOINT_URL` at its `endpoint`.
//! Each connection carries one request (moto answers `Connection: close`, and so does the
//! proxy). The request is forwarded byte for byte, the `Host` header included, so SigV4 still
//! verifies at moto. On the way it is parsed for what tests match on and assert: the query
//! protocol `Action` and the other form or query parameters (IAM and STS are awsQuery), the
//! signing access key id and service from `Authorization: AWS4-HMAC-SHA256 Credential=...`,
//! and whether `X-Amz-Security-Token` was sent.
//!
//! [`Rule`]s are checked in the order they were added; the first that matches (action or
//! `"*"`, signing key, past its `skip` count, not used up) injects its [`Fault`]. A rule that
//! lets a match through (`skip`) or is used up does not stop later rules from matching.
//!
//! Bounded: every thread (the acceptor and one per connection) ends when the proxy is dropped:
//! reads time out, delays and holds wake on drop, and a hold never outlasts
//! [`MAX_HOLD`]. Parameters are recorded for assertions (an MFA `TokenCode`, for instance) and
//! never printed: the `Debug` of [`Recorded`] shows parameter names only.
//!
//! Must not: change a forwarded request, connect anywhere but the upstream given, or print
//! what it records.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a held request waits for [`FaultProxy::release_all`] before going on by itself.
pub const MAX_HOLD: Duration = Duration::from_secs(300);

/// How long the proxy waits for a client to send its request.
const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the proxy waits for moto's answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Which signing key a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMatch {
    /// Any request, signed or not.
    Any,
    /// Requests signed with this access key id.
    Is(String),
    /// Requests signed with any other key (or not signed).
    IsNot(String),
}

impl KeyMatch {
    fn matches(&self, key_id: Option<&str>) -> bool {
        match self {
            KeyMatch::Any => true,
            KeyMatch::Is(k) => key_id == Some(k.as_str()),
            KeyMatch::IsNot(k) => key_id != Some(k.as_str()),
        }
    }
}

/// What a matching rule does to the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer at once, without forwarding, with an awsQuery XML error:
    /// `<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message></Error>
    /// <RequestId>..</RequestId></ErrorResponse>` as AWS sends it. With `code: None` the body
    /// has moto's auth-error envelope (`<ErrorResponse><Errors><Error>...`) with no code at
    /// all: every client sees an error with no code, only the HTTP status.
    Error {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Wait this long, then forward.
    Delay(Duration),
    /// Read the request, then close the connection without answering (nothing reaches moto).
    Reset,
    /// Hold the request until [`FaultProxy::release_all`], then forward it.
    HoldBeforeForward,
    /// Forward, get moto's answer, and hold it until [`FaultProxy::release_all`]: the effect
    /// happened, the client has not heard. Kill the client while it is held to lose the answer.
    HoldAfterForward,
    /// IAM's account rate limit: let at most this many matching requests through in any one
    /// second (a sliding window) and answer the others at once with `Throttling` (HTTP 400,
    /// IAM's XML error body; nothing reaches moto). Requests let through do not stop later
    /// rules from matching; only the refusals count as fired.
    RateAbove(u32),
    /// Slow IAM propagation: a request signed with a key not in `known` is answered 403
    /// `InvalidClientTokenId` until `for_` has passed since that key's first request.
    Unpropagated { known: Vec<String>, for_: Duration },
    /// Forward to moto (the effect happens), drop its answer, and do this instead: an
    /// `Error` (a 500 after the side effect), `Reset` (the connection drops), or `Delay(d)`
    /// then close (a stall past the client's attempt timeout). What a lost answer looks like.
    ForwardThenFail(Box<Fault>),
}

/// One fault-injection rule. Build with the constructors, refine with the chained setters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The awsQuery `Action` (`CreateAccessKey`, `GetCallerIdentity`, ...) or `"*"`.
    pub action: String,
    /// Which signing keys it applies to.
    pub key: KeyMatch,
    /// Let the first `skip` matching requests through untouched.
    pub skip: u32,
    /// Inject at most this many times (after the skipped ones); `None` = forever.
    pub times: Option<u32>,
    /// What to do.
    pub fault: Fault,
}

impl Rule {
    /// `fault` for every request with this action, forever.
    pub fn new(action: &str, fault: Fault) -> Rule {
        Rule {
            action: action.to_string(),
            key: KeyMatch::Any,
            skip: 0,
            times: None,
            fault,
        }
    }

    /// `Throttling` for requests with this action (or `"*"`) beyond `per_second` a second.
    pub fn throttle_above(action: &str, per_second: u32) -> Rule {
        Rule::new(action, Fault::RateAbove(per_second))
    }

    /// Every key not in `known` is refused (`InvalidClientTokenId`) for `for_` after its
    /// first use: the propagation drill.
    pub fn unpropagated_for(known: &[String], for_: Duration) -> Rule {
        Rule::new(
            "*",
            Fault::Unpropagated {
                known: known.to_vec(),
                for_,
            },
        )
    }

    /// An AWS error answer; `code: None` gives moto's envelope without a code (use 403 for
    /// "moto's auth failure").
    pub fn error<'a>(
        action: &str,
        status: u16,
        code: impl Into<Option<&'a str>>,
        message: &str,
    ) -> Rule {
        Rule::new(
            action,
            Fault::Error {
                status,
                code: code.into().map(str::to_string),
                message: message.to_string(),
            },
        )
    }

    /// `Throttling` (HTTP 400, "Rate exceeded"), as IAM sends it; the SDKs retry it.
    pub fn throttle(action: &str) -> Rule {
        Rule::error(action, 400, "Throttling", "Rate exceeded")
    }

    /// The IAM propagation drill: `GetCallerIdentity` signed with any key but `not_key` (the
    /// old key) is refused with `InvalidClientTokenId` (403), `times` times.
    pub fn invalid_token_for_new_keys(not_key: &str, times: u32) -> Rule {
        Rule::error(
            "GetCallerIdentity",
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
        .key(KeyMatch::IsNot(not_key.to_string()))
        .times(times)
    }

    /// Wait `delay`, then forward.
    pub fn delay(action: &str, delay: Duration) -> Rule {
        Rule::new(action, Fault::Delay(delay))
    }

    /// Close the connection without answering.
    pub fn reset(action: &str) -> Rule {
        Rule::new(action, Fault::Reset)
    }

    /// Hold the request before it reaches moto.
    pub fn hold_before(action: &str) -> Rule {
        Rule::new(action, Fault::HoldBeforeForward)
    }

    /// Forward to moto, then hold its answer.
    pub fn hold_after(action: &str) -> Rule {
        Rule::new(action, Fault::HoldAfterForward)
    }

    /// Forward to moto, then lose the answer as `then` says (see [`Fault::ForwardThenFail`]).
    pub fn after_effect(action: &str, then: Fault) -> Rule {
        Rule::new(action, Fault::ForwardThenFail(Box::new(then)))
    }

    /// Only for requests signed with keys matching `key`.
    pub fn key(mut self, key: KeyMatch) -> Rule {
        self.key = key;
        self
    }

    /// Let the first `n` matching requests through.
    pub fn skip(mut self, n: u32) -> Rule {
        self.skip = n;
        self
    }

    /// Inject `n` times, then let everything through.
    pub fn times(mut self, n: u32) -> Rule {
        self.times = Some(n);
        self
    }

    /// Inject on every match.
    pub fn forever(mut self) -> Rule {
        self.times = None;
        self
    }

    fn matches(&self, action: &str, key_id: Option<&str>) -> bool {
        (self.action == "*" || self.action == action) && self.key.matches(key_id)
    }
}

/// Identifies a rule added to a proxy, to ask how often it fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleId(usize);

/// One request that reached the proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The awsQuery `Action` (empty when the request had none).
    pub action: String,
    /// The signing service from the SigV4 credential scope (`iam`, `sts`).
    pub service: Option<String>,
    /// The signing access key id.
    pub key_id: Option<String>,
    /// Whether `X-Amz-Security-Token` was sent (a session's credentials).
    pub has_session_token: bool,
    /// Every form and query parameter, `Action` included. Never print these.
    pub params: BTreeMap<String, String>,
    /// The HTTP status the client was sent; 0 while pending, or when the connection was reset
    /// or the client was gone. For a held answer, moto's status as soon as moto answered.
    pub status: u16,
    /// The fault injected, if any (`"error 503 ServiceUnavailable"`, `"delay 500ms"`,
    /// `"reset"`, `"hold-before"`, `"hold-after"`).
    pub injected: Option<String>,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded")
            .field("action", &self.action)
            .field("service", &self.service)
            .field("key_id", &self.key_id.as_deref().map(super::mask))
            .field("has_session_token", &self.has_session_token)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .field("status", &self.status)
            .field("injected", &self.injected)
            .finish()
    }
}

struct RuleState {
    rule: Rule,
    seen: u32,
    fired: u32,
    /// When the requests a `RateAbove` rule let through arrived, within the last second.
    admitted: std::collections::VecDeque<Instant>,
    /// When an `Unpropagated` rule first saw each new key.
    first_seen: BTreeMap<String, Instant>,
}

#[derive(Default)]
struct State {
    rules: Vec<RuleState>,
    records: Vec<Recorded>,
    /// Requests read and not yet answered, and the most there ever were at once.
    in_flight: usize,
    /// Per record: answered (or given up on), for `in_flight`.
    answered: Vec<bool>,
    max_in_flight: usize,
    held: usize,
    release_generation: u64,
    discard_generation: u64,
    workers: Vec<JoinHandle<()>>,
}

impl State {
    /// The request `index` has its answer (or never will): it is no longer in flight.
    fn answer(&mut self, index: usize) {
        if let Some(answered) = self.answered.get_mut(index)
            && !*answered
        {
            *answered = true;
            self.in_flight -= 1;
        }
    }
}

/// Ends a request's time in flight when its handler returns, whatever the path.
struct Open<'a> {
    shared: &'a Shared,
    index: usize,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.shared.lock().answer(self.index);
    }
}

struct Shared {
    upstream: String,
    state: Mutex<State>,
    changed: Condvar,
    shutdown: AtomicBool,
    request_ids: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Sleeps `d`, or less when the proxy is dropped. True when the full time passed.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut state = self.lock();
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Holds until release_all, drop, or MAX_HOLD. True unless the proxy is stopping.
    fn hold(&self) -> bool {
        let deadline = Instant::now() + MAX_HOLD;
        let mut state = self.lock();
        let generation = state.release_generation;
        let discards = state.discard_generation;
        state.held += 1;
        self.changed.notify_all();
        while state.release_generation == generation && !self.stopping() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.held -= 1;
        let discarded = state.discard_generation != discards;
        self.changed.notify_all();
        !self.stopping() && !discarded
    }

    fn set_status(&self, index: usize, status: u16) {
        let mut state = self.lock();
        state.records[index].status = status;
        if status != 0 {
            state.answer(index);
        }
    }
}

/// The proxy. Dropping it stops every thread it started.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1:0 in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream_addr = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the upstream must be http://HOST:PORT, not {upstream}"))
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy to 127.0.0.1:0");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream: upstream_addr,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            shutdown: AtomicBool::new(false),
            request_ids: AtomicU64::new(1),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("fault-proxy-accept".into())
                .spawn(move || accept_loop(&listener, &shared))
                .expect("spawn the proxy's acceptor")
        };
        FaultProxy {
            endpoint: format!("http://{addr}"),
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Adds a rule after the existing ones.
    pub fn add_rule(&self, rule: Rule) -> RuleId {
        let mut state = self.shared.lock();
        state.rules.push(RuleState {
            rule,
            seen: 0,
            fired: 0,
            admitted: Default::default(),
            first_seen: BTreeMap::new(),
        });
        RuleId(state.rules.len() - 1)
    }

    /// Removes every rule (requests in flight keep the fault they already got).
    pub fn clear_rules(&self) {
        self.shared.lock().rules.clear();
    }

    /// How many times a rule injected its fault (0 for a rule removed by `clear_rules`).
    pub fn fired(&self, id: RuleId) -> u32 {
        self.shared.lock().rules.get(id.0).map_or(0, |r| r.fired)
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().records.clone()
    }

    /// The most requests that were open at the proxy at once (since the last
    /// [`FaultProxy::clear_requests`]).
    pub fn max_in_flight(&self) -> usize {
        self.shared.lock().max_in_flight
    }

    /// The actions seen so far, in arrival order.
    pub fn actions(&self) -> Vec<String> {
        self.shared
            .lock()
            .records
            .iter()
            .map(|r| r.action.clone())
            .collect()
    }

    /// How many requests with this action were seen.
    pub fn count(&self, action: &str) -> usize {
        self.shared
            .lock()
            .records
            .iter()
            .filter(|r| r.action == action)
            .count()
    }

    /// Forgets the recorded requests (rules stay).
    pub fn clear_requests(&self) {
        let mut state = self.shared.lock();
        state.records.clear();
        state.answered.clear();
        state.in_flight = 0;
        state.max_in_flight = 0;
    }

    /// How many requests or answers are held now.
    pub fn held(&self) -> usize {
        self.shared.lock().held
    }

    /// Waits until at least `n` are held; false on timeout.
    pub fn wait_held(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.held < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Drops everything held now: a request held before moto never reaches it, a held
    /// answer is never delivered; the connections are closed. The proxy keeps serving new
    /// requests (by the rules left). For crash tests: what was in flight when the client was
    /// killed must not land later, while a recovery run uses the same endpoint.
    pub fn discard_held(&self) {
        let mut state = self.shared.lock();
        state.discard_generation += 1;
        state.release_generation += 1;
        self.shared.changed.notify_all();
    }

    /// Lets everything held now go on (requests are forwarded, answers delivered). Rules that
    /// hold keep holding later requests: clear them first to stop holding.
    pub fn release_all(&self) {
        let mut state = self.shared.lock();
        state.release_generation += 1;
        self.shared.changed.notify_all();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        {
            let _state = self.shared.lock();
            self.shared.changed.notify_all();
        }
        // Wake the acceptor, which is blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let workers = std::mem::take(&mut self.shared.lock().workers);
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping() {
            return;
        }
        let Ok(stream) = conn else {
            // Out of file descriptors, say: do not spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let worker = {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name("fault-proxy-conn".into())
                .spawn(move || {
                    let _ = handle(stream, &shared);
                })
        };
        let mut state = shared.lock();
        state.workers.retain(|w| !w.is_finished());
        if let Ok(worker) = worker {
            state.workers.push(worker);
        }
    }
}

/// An HTTP message read off a socket: the raw head, the parsed start line and headers, the body.
struct Message {
    head: Vec<u8>,
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 message. `Ok(None)` when the peer closed before sending anything.
/// `to_eof_without_length`: a response with no Content-Length runs to the end of the stream.
fn read_message(
    stream: &mut TcpStream,
    to_eof_without_length: bool,
) -> io::Result<Option<Message>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 256 * 1024 {
            return Err(io::Error::other("HTTP head larger than 256 KiB"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated HTTP head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = buf[..head_end].to_vec();
    let mut body = buf[head_end..].to_vec();
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut msg = Message {
        head,
        start,
        headers,
        body: Vec::new(),
    };
    if msg
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    {
        return Err(io::Error::other(
            "chunked transfer encoding is not supported",
        ));
    }
    match msg.header("content-length") {
        Some(len) => {
            let len: usize = len
                .parse()
                .map_err(|_| io::Error::other("bad Content-Length"))?;
            while body.len() < len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated body",
                    ));
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        None if to_eof_without_length => {
            stream.read_to_end(&mut body)?;
        }
        None => body.clear(),
    }
    msg.body = body;
    Ok(Some(msg))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes `application/x-www-form-urlencoded` pairs into `out`.
fn parse_form(input: &str, out: &mut BTreeMap<String, String>) {
    for pair in input.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(url_decode(k), url_decode(v));
    }
}

fn url_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `Credential=AKIA.../20260101/us-east-1/iam/aws4_request` → (key id, service).
fn parse_authorization(auth: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = auth.split("Credential=").nth(1) else {
        return (None, None);
    };
    let scope = rest.split([',', ' ']).next().unwrap_or_default();
    let mut parts = scope.split('/');
    let key = parts.next().filter(|k| !k.is_empty()).map(str::to_string);
    let service = parts.nth(2).map(str::to_string);
    (key, service)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The body of an injected error: AWS's awsQuery shape, or moto's auth envelope with no code.
pub fn error_body(code: Option<&str>, message: &str, request_id: &str) -> String {
    let message = xml_escape(message);
    match code {
        Some(code) => format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <Error><Type>Sender</Type><Code>{}</Code><Message>{message}</Message></Error>\
             <RequestId>{request_id}</RequestId></ErrorResponse>",
            xml_escape(code)
        ),
        None => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Errors><Error>\
             <Message>{message}</Message></Error></Errors></ErrorResponse>"
        ),
    }
}

fn write_response(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    request_id: &str,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         x-amzn-RequestId: {request_id}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Sends the request to moto and reads its whole answer: (status, bytes to send back).
fn forward(shared: &Shared, request: &Message) -> io::Result<(u16, Vec<u8>)> {
    let addr: SocketAddr = shared
        .upstream
        .parse()
        .map_err(|e| io::Error::other(format!("upstream {}: {e}", shared.upstream)))?;
    let mut up = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    up.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    up.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
    up.write_all(&request.head)?;
    up.write_all(&request.body)?;
    up.flush()?;
    let answer = read_message(&mut up, true)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream sent nothing"))?;
    let status = answer
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("upstream sent no status"))?;
    // Re-frame: the same start line and headers, but an exact length and Connection: close.
    let mut out = format!("{}\r\n", answer.start).into_bytes();
    for (k, v) in &answer.headers {
        if k.eq_ignore_ascii_case("connection")
            || k.eq_ignore_ascii_case("content-length")
            || k.eq_ignore_ascii_case("keep-alive")
        {
            continue;
        }
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            answer.body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&answer.body);
    Ok((status, out))
}

fn handle(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    if shared.stopping() {
        return Ok(());
    }
    client.set_read_timeout(Some(CLIENT_READ_TIMEOUT))?;
    client.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
    let request_id = format!(
        "fault-proxy-{:08}",
        shared.request_ids.fetch_add(1, Ordering::Relaxed)
    );
    let request = match read_message(&mut client, false) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(()),
        Err(e) => {
            let body = format!("fault proxy: cannot read the request: {e}");
            return write_response(&mut client, 501, "text/plain", body.as_bytes(), &request_id);
        }
    };

    let mut params = BTreeMap::new();
    if let Some((_, query)) = request
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.split_once('?'))
    {
        parse_form(query, &mut params);
    }
    let is_form = request
        .header("content-type")
        .is_none_or(|ct| ct.to_ascii_lowercase().contains("x-www-form-urlencoded"));
    if is_form {
        parse_form(&String::from_utf8_lossy(&request.body), &mut params);
    }
    let (key_id, service) = request
        .header("authorization")
        .map(parse_authorization)
        .unwrap_or((None, None));
    let has_session_token = request.header("x-amz-security-token").is_some()
        || params.contains_key("X-Amz-Security-Token");
    let action = params.get("Action").cloned().unwrap_or_default();

    // Record, and pick the fault, in one step.
    let (index, fault) = {
        let mut state = shared.lock();
        let mut fault = None;
        for rs in state.rules.iter_mut() {
            if !rs.rule.matches(&action, key_id.as_deref()) {
                continue;
            }
            rs.seen += 1;
            if rs.seen <= rs.rule.skip {
                continue;
            }
            if rs.rule.times.is_some_and(|t| rs.fired >= t) {
                continue;
            }
            if let Fault::RateAbove(per_second) = rs.rule.fault {
                let now = Instant::now();
                while rs
                    .admitted
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
                {
                    rs.admitted.pop_front();
                }
                if rs.admitted.len() < per_second as usize {
                    rs.admitted.push_back(now);
                    continue;
                }
                rs.fired += 1;
                fault = Some(Fault::Error {
                    status: 400,
                    code: Some("Throttling".into()),
                    message: "Rate exceeded".into(),
                });
                break;
            }
            if let Fault::Unpropagated { known, for_ } = &rs.rule.fault {
                let Some(key) = key_id.as_deref().filter(|k| !known.iter().any(|n| n == k)) else {
                    continue;
                };
                let now = Instant::now();
                let first = *rs.first_seen.entry(key.to_string()).or_insert(now);
                if now.duration_since(first) >= *for_ {
                    continue;
                }
                rs.fired += 1;
                fault = Some(Fault::Error {
                    status: 403,
                    code: Some("InvalidClientTokenId".into()),
                    message: "The security token included in the request is invalid.".into(),
                });
                break;
            }
            rs.fired += 1;
            fault = Some(rs.rule.fault.clone());
            break;
        }
        state.records.push(Recorded {
            action,
            service,
            key_id,
            has_session_token,
            params,
            status: 0,
            injected: fault.as_ref().map(describe),
        });
        state.answered.push(false);
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        shared.changed.notify_all();
        (state.records.len() - 1, fault)
    };
    let _open = Open { shared, index };

    match fault {
        None => relay(&mut client, shared, &request, index, &request_id),
        Some(Fault::Error {
            status,
            code,
            message,
        }) => {
            let body = error_body(code.as_deref(), &message, &request_id);
            shared.set_status(index, status);
            write_response(
                &mut client,
                status,
                "text/xml",
                body.as_bytes(),
                &request_id,
            )
        }
        Some(Fault::Delay(d)) => {
            if !shared.sleep(d) {
                return Ok(());
            }
            relay(&mut client, shared, &request, index, &request_id)
        }
        Some(Fault::Reset) => {
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Some(Fault::HoldBeforeForward) => {
            if !shared.hold() {
                return Ok(());
            }
            relay(&mut client, shared, &request, index, &request_id)
        }
        Some(Fault::ForwardThenFail(then)) => {
            let answer = forward(shared, &request);
            if let Ok((status, _)) = &answer {
                shared.set_status(index, *status);
            }
            match *then {
                Fault::Error {
                    status,
                    code,
                    message,
                } => {
                    let body = error_body(code.as_deref(), &message, &request_id);
                    write_response(
                        &mut client,
                        status,
                        "text/xml",
                        body.as_bytes(),
                        &request_id,
                    )
                }
                Fault::Delay(d) => {
                    shared.sleep(d);
                    let _ = client.shutdown(Shutdown::Both);
                    Ok(())
                }
                _ => {
                    let _ = client.shutdown(Shutdown::Both);
                    Ok(())
                }
            }
        }
        Some(Fault::HoldAfterForward) => {
            let answer = forward(shared, &request);
            if let Ok((status, _)) = &answer {
                shared.set_status(index, *status);
            }
            if !shared.hold() {
                return Ok(());
            }
            send_answer(&mut client, shared, answer, index, &request_id)
        }
        Some(Fault::RateAbove(_) | Fault::Unpropagated { .. }) => {
            unreachable!("these rules inject an error or nothing")
        }
    }
}

fn relay(
    client: &mut TcpStream,
    shared: &Shared,
    request: &Message,
    index: usize,
    request_id: &str,
) -> io::Result<()> {
    let answer = forward(shared, request);
    send_answer(client, shared, answer, index, request_id)
}

fn send_answer(
    client: &mut TcpStream,
    shared: &Shared,
    answer: io::Result<(u16, Vec<u8>)>,
    index: usize,
    request_id: &str,
) -> io::Result<()> {
    match answer {
        Ok((status, bytes)) => {
            // Recorded before the client can hear, so a test that got its answer sees it.
            shared.set_status(index, status);
            let sent = client.write_all(&bytes).and_then(|()| client.flush());
            if sent.is_err() {
                shared.set_status(index, 0);
            }
            sent
        }
        Err(e) => {
            shared.set_status(index, 502);
            let body = format!("fault proxy: upstream {} failed: {e}", shared.upstream);
            write_response(client, 502, "text/plain", body.as_bytes(), request_id)
        }
    }
}

fn describe(fault: &Fault) -> String {
    match fault {
        Fault::Error { status, code, .. } => {
            format!("error {status} {}", code.as_deref().unwrap_or("<no code>"))
        }
        Fault::Delay(d) => format!("delay {}ms", d.as_millis()),
        Fault::RateAbove(n) => format!("throttle above {n}/s"),
        Fault::Unpropagated { for_, .. } => format!("unpropagated {}ms", for_.as_millis()),
        Fault::Reset => "reset".into(),
        Fault::HoldBeforeForward => "hold-before".into(),
        Fault::HoldAfterForward => "hold-after".into(),
        Fault::ForwardThenFail(then) => format!("forward, then {}", describe(then)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_signing_key_and_service() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE123/20261122/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(
            parse_authorization(auth),
            (Some("AKIAEXAMPLE123".into()), Some("sts".into()))
        );
        assert_eq!(parse_authorization("Basic xyz"), (None, None));
    }

    #[test]
    fn decodes_forms() {
        let mut m = BTreeMap::new();
        parse_form("Action=CreateAccessKey&UserName=a%2Bb+c&Flag", &mut m);
        assert_eq!(m["Action"], "CreateAccessKey");
        assert_eq!(m["UserName"], "a+b c");
        assert_eq!(m["Flag"], "");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz"), "%zz");
    }
}
