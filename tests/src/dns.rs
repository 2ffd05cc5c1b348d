//! A small authoritative DNS server for the end-to-end tests.
//!
//! The delivery worker's MX tests (and the later SPF/DKIM/DMARC tests) need a DNS they control:
//! MX sets with several preferences, null MX (RFC 7505), NXDOMAIN, NODATA, SERVFAIL, CNAMEs and
//! DKIM keys longer than one 255-byte character-string; the SPF suite (RFC 7208) also needs TXT
//! records of any shape (several character-strings, none, bytes that are no UTF-8), the obsolete
//! SPF record type, SERVFAIL for one type only and names with characters a host name cannot
//! have. [`DnsServer::start`] serves a [`Zone`] on
//! 127.0.0.1 over UDP and TCP (RFC 1035 §4.2, length-prefixed on TCP; answers too large for the
//! query's UDP payload size come back truncated so the client retries over TCP). The zone can be
//! changed while the server runs, and the server counts the queries it received, so a test can
//! assert that a lookup happened. A service under test is pointed at it with [`resolver_config`].
//!
//! It trusts nothing it receives: malformed packets are dropped, never answered with a panic. It
//! answers only from the zone and never recurses or forwards.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NULL, PTR, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// TTL of every answer: short, so a service's own cache hides a record a test changed mid-test
/// for a second at most.
const TTL_SECONDS: u32 = 1;
/// Longest CNAME chain followed in one answer; a longer one is a loop in the test's zone.
const MAX_CNAME_HOPS: usize = 8;
/// Largest UDP datagram read; a query we are meant to answer is far smaller.
const MAX_UDP_DATAGRAM: usize = 4096;
/// UDP payload size advertised in the OPT record of answers to EDNS queries.
const EDNS_PAYLOAD: u16 = 1232;
/// Longest DNS character-string (RFC 1035 §3.3).
const MAX_CHARACTER_STRING: usize = 255;
/// The SPF record type (RFC 4408 §3.1.1), which RFC 7208 §3.1 retired; it has TXT's RDATA.
pub const SPF_RECORD_TYPE: RecordType = RecordType::Unknown(99);

/// The records a test serves. Names are case-insensitive, with or without the trailing dot, and
/// taken literally: every byte between two dots is part of a label (no `\` escapes).
#[derive(Clone, Debug, Default)]
pub struct Zone {
    records: HashMap<String, Vec<RData>>,
    servfail: HashSet<String>,
    servfail_types: HashSet<(String, RecordType)>,
}

impl Zone {
    pub fn a(&mut self, name: &str, address: Ipv4Addr) -> &mut Self {
        self.add(name, RData::A(A(address)))
    }

    pub fn aaaa(&mut self, name: &str, address: Ipv6Addr) -> &mut Self {
        self.add(name, RData::AAAA(AAAA(address)))
    }

    pub fn mx(&mut self, name: &str, preference: u16, exchange: &str) -> &mut Self {
        self.add(name, RData::MX(MX::new(preference, dns_name(exchange))))
    }

    /// `MX 0 .`: the domain accepts no mail (RFC 7505).
    pub fn null_mx(&mut self, name: &str) -> &mut Self {
        self.mx(name, 0, ".")
    }

    /// One TXT record; `text` is split into 255-byte character-strings, which a reader joins.
    pub fn txt(&mut self, name: &str, text: &str) -> &mut Self {
        let mut strings: Vec<&[u8]> = text.as_bytes().chunks(MAX_CHARACTER_STRING).collect();
        if strings.is_empty() {
            strings.push(b"");
        }
        self.add(name, RData::TXT(TXT::from_bytes(strings)))
    }

    /// One TXT record made of exactly these character-strings, in order: none at all, several
    /// that a reader joins without a separator, or bytes that are no UTF-8.
    pub fn txt_strings<S: AsRef<[u8]>>(&mut self, name: &str, strings: &[S]) -> &mut Self {
        self.add(
            name,
            RData::TXT(TXT::from_bytes(character_strings(strings))),
        )
    }

    /// One record of the retired SPF type 99 with these character-strings (see [`Self::txt_strings`]).
    pub fn spf_type<S: AsRef<[u8]>>(&mut self, name: &str, strings: &[S]) -> &mut Self {
        let mut rdata = NULL::new();
        for string in character_strings(strings) {
            let len = u8::try_from(string.len()).expect("checked by character_strings");
            rdata.anything.push(len);
            rdata.anything.extend_from_slice(string);
        }
        let code = SPF_RECORD_TYPE;
        self.add(name, RData::Unknown { code, rdata })
    }

    pub fn cname(&mut self, name: &str, target: &str) -> &mut Self {
        self.add(name, RData::CNAME(CNAME(dns_name(target))))
    }

    /// The reverse record of `address` (under in-addr.arpa or ip6.arpa).
    pub fn ptr(&mut self, address: IpAddr, name: &str) -> &mut Self {
        let reverse = Name::from(address).to_ascii();
        self.add(&reverse, RData::PTR(PTR(dns_name(name))))
    }

    /// A PTR record at a reverse name given as text (`4.3.2.1.in-addr.arpa`).
    pub fn ptr_at(&mut self, reverse_name: &str, name: &str) -> &mut Self {
        self.add(reverse_name, RData::PTR(PTR(dns_name(name))))
    }

    /// Answer SERVFAIL for any type at `name`.
    pub fn servfail(&mut self, name: &str) -> &mut Self {
        self.set_servfail(name, true)
    }

    pub fn set_servfail(&mut self, name: &str, failing: bool) -> &mut Self {
        if failing {
            self.servfail.insert(key(name));
        } else {
            self.servfail.remove(&key(name));
        }
        self
    }

    /// Answer SERVFAIL for `record_type` at `name` only; other types are answered as usual. A
    /// resolver reports it as an error, as it would a server that never answers that type.
    pub fn servfail_type(&mut self, name: &str, record_type: RecordType) -> &mut Self {
        self.servfail_types.insert((key(name), record_type));
        self
    }

    /// Removes every record at `name` (and its SERVFAIL marks): the name becomes NXDOMAIN.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        let name = key(name);
        self.records.remove(&name);
        self.servfail.remove(&name);
        self.servfail_types.retain(|(n, _)| *n != name);
        self
    }

    /// Any other record type.
    pub fn add(&mut self, name: &str, data: RData) -> &mut Self {
        self.records.entry(key(name)).or_default().push(data);
        self
    }

    /// The response code and answer section for `query`.
    fn answer(&self, query: &Query) -> (ResponseCode, Vec<Record>) {
        let wanted = query.query_type();
        let mut answers = Vec::new();
        let mut owner = query.name().clone();
        for _ in 0..MAX_CNAME_HOPS {
            let name = name_key(&owner);
            if self.servfail.contains(&name)
                || self.servfail_types.contains(&(name.clone(), wanted))
            {
                return (ResponseCode::ServFail, Vec::new());
            }
            let Some(data) = self.records.get(&name) else {
                // A CNAME to a name outside the zone: the alias alone, as an authority for this
                // zone only would answer. A name with names below it exists (empty non-terminal).
                let suffix = format!(".{name}");
                let exists =
                    !answers.is_empty() || self.records.keys().any(|k| k.ends_with(&suffix));
                let code = if exists {
                    ResponseCode::NoError
                } else {
                    ResponseCode::NXDomain
                };
                return (code, answers);
            };
            let alias = data.iter().find_map(|d| match d {
                RData::CNAME(target) => Some(target.0.clone()),
                _ => None,
            });
            match alias {
                Some(target) if wanted != RecordType::CNAME => {
                    let cname = RData::CNAME(CNAME(target.clone()));
                    answers.push(Record::from_rdata(owner, TTL_SECONDS, cname));
                    owner = target;
                }
                _ => {
                    answers.extend(
                        data.iter()
                            .filter(|d| d.record_type() == wanted)
                            .map(|d| Record::from_rdata(owner.clone(), TTL_SECONDS, d.clone())),
                    );
                    return (ResponseCode::NoError, answers);
                }
            }
        }
        (ResponseCode::ServFail, Vec::new())
    }
}

/// The lookup key of a name: lowercase, without the trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The lookup key of a name on the wire: its labels' bytes as they are, lowercase.
fn name_key(name: &Name) -> String {
    let labels: Vec<String> = name
        .iter()
        .map(|label| String::from_utf8_lossy(label).to_ascii_lowercase())
        .collect();
    labels.join(".")
}

/// A fully qualified name from a test's literal: a host name (escapes allowed), else the bytes
/// between the dots as labels, so that names like `foo:bar/baz.example` can be targets too. `""`
/// is the root. Panics on a name no DNS message can carry (an empty or over-long label).
fn dns_name(text: &str) -> Name {
    let trimmed = text.trim_end_matches('.');
    let mut name = if trimmed.is_empty() {
        Name::root()
    } else {
        Name::from_ascii(text)
            .or_else(|_| Name::from_labels(trimmed.split('.').map(str::as_bytes)))
            .unwrap_or_else(|e| panic!("bad DNS name {text:?}: {e}"))
    };
    name.set_fqdn(true);
    name
}

/// `strings` as TXT character-strings, each checked against the 255-byte limit.
fn character_strings<S: AsRef<[u8]>>(strings: &[S]) -> Vec<&[u8]> {
    let strings: Vec<&[u8]> = strings.iter().map(AsRef::as_ref).collect();
    for string in &strings {
        assert!(
            string.len() <= MAX_CHARACTER_STRING,
            "a character-string is at most {MAX_CHARACTER_STRING} bytes, not {}",
            string.len()
        );
    }
    strings
}

struct Shared {
    zone: Mutex<Zone>,
    queries: Mutex<HashMap<(String, RecordType), usize>>,
}

impl Shared {
    fn zone(&self) -> MutexGuard<'_, Zone> {
        self.zone.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn queries(&self) -> MutexGuard<'_, HashMap<(String, RecordType), usize>> {
        self.queries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The encoded answer to one query message, or `None` for bytes that are no query.
    /// `udp` marks a datagram, whose answer is truncated to the query's payload size.
    fn respond(&self, bytes: &[u8], udp: bool) -> Option<Vec<u8>> {
        let request = Message::from_vec(bytes).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.add_queries(request.queries.iter().cloned());
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            response.set_edns(edns);
        }
        response.metadata.response_code = match (request.metadata.op_code, &request.queries[..]) {
            (OpCode::Query, [query]) => {
                *self
                    .queries()
                    .entry((name_key(query.name()), query.query_type()))
                    .or_default() += 1;
                let (code, answers) = self.zone().answer(query);
                response.add_answers(answers);
                code
            }
            (OpCode::Query, _) => ResponseCode::FormErr,
            _ => ResponseCode::NotImp,
        };
        let encoded = response.to_vec().ok()?;
        if !udp || encoded.len() <= usize::from(request.max_payload()) {
            return Some(encoded);
        }
        response.answers.clear();
        response.metadata.truncation = true;
        response.to_vec().ok()
    }
}

/// A DNS server on 127.0.0.1 (UDP and TCP, same port) answering from a [`Zone`]; it runs on its
/// own thread and runtime, so it works from plain and `#[tokio::test]` tests alike, and stops
/// when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    pub fn start(zone: Zone) -> Self {
        let (udp, tcp) = bind_udp_and_tcp();
        let addr = udp.local_addr().expect("DNS server address");
        let shared = Arc::new(Shared {
            zone: Mutex::new(zone),
            queries: Mutex::default(),
        });
        let (shutdown, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("test-dns-{}", addr.port()))
            .spawn({
                let shared = shared.clone();
                move || serve(udp, tcp, shared, stopped)
            })
            .expect("start DNS server thread");
        Self {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live zone: changes apply to the next query. Do not hold it across an `.await`.
    pub fn zone(&self) -> MutexGuard<'_, Zone> {
        self.shared.zone()
    }

    pub fn set_servfail(&self, name: &str, failing: bool) {
        self.zone().set_servfail(name, failing);
    }

    /// Queries received for `name`, all types together.
    pub fn queries(&self, name: &str) -> usize {
        let name = key(name);
        self.shared
            .queries()
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, count)| count)
            .sum()
    }

    /// Queries received for `name` and `record_type`.
    pub fn queries_of(&self, name: &str, record_type: RecordType) -> usize {
        self.shared
            .queries()
            .get(&(key(name), record_type))
            .copied()
            .unwrap_or(0)
    }

    /// A hickory resolver that asks this server only (see [`resolver_config`]).
    pub fn resolver(&self) -> TokioResolver {
        let (config, options) = resolver_config(self.addr);
        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .expect("build resolver")
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How to point a hickory resolver at the server at `addr`:
/// `TokioResolver::builder_with_config(config, TokioRuntimeProvider::default()).with_options(options).build()`.
/// UDP, falling back to TCP on truncation; no search domains, no hosts file, no cache (tests change
/// records mid-test); one attempt with a 2 s timeout, so a missing answer fails a test quickly.
pub fn resolver_config(addr: SocketAddr) -> (ResolverConfig, ResolverOpts) {
    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
    for connection in &mut server.connections {
        connection.port = addr.port();
    }
    let mut options = ResolverOpts::default();
    options.attempts = 0;
    options.timeout = Duration::from_secs(2);
    options.cache_size = 0;
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    options.use_hosts_file = ResolveHosts::Never;
    (ResolverConfig::from_name_servers(vec![server]), options)
}

/// A UDP socket and a TCP listener on the same free loopback port.
fn bind_udp_and_tcp() -> (UdpSocket, TcpListener) {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let Ok(tcp) = TcpListener::bind(udp.local_addr().expect("UDP address")) else {
            continue;
        };
        udp.set_nonblocking(true).expect("nonblocking UDP");
        tcp.set_nonblocking(true).expect("nonblocking TCP");
        return (udp, tcp);
    }
    panic!("no loopback port free for both UDP and TCP after 100 tries");
}

fn serve(udp: UdpSocket, tcp: TcpListener, shared: Arc<Shared>, stopped: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("DNS server runtime");
    // Leaving `block_on` drops the runtime and with it every TCP connection task.
    runtime.block_on(async move {
        let udp = tokio::net::UdpSocket::from_std(udp).expect("UDP socket");
        let tcp = tokio::net::TcpListener::from_std(tcp).expect("TCP listener");
        tokio::select! {
            _ = stopped => {}
            () = serve_udp(&udp, &shared) => {}
            () = serve_tcp(&tcp, &shared) => {}
        }
    });
}

async fn serve_udp(socket: &tokio::net::UdpSocket, shared: &Shared) {
    let mut buffer = vec![0; MAX_UDP_DATAGRAM];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        if let Some(reply) = shared.respond(&buffer[..len], true) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: &tokio::net::TcpListener, shared: &Arc<Shared>) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(stream, shared.clone()));
        }
    }
}

/// Several queries per connection, each with its 2-byte length prefix (RFC 1035 §4.2.2).
async fn serve_connection(mut stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    while let Ok(len) = stream.read_u16().await {
        let mut query = vec![0; usize::from(len)];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let Some(reply) = shared.respond(&query, false) else {
            continue;
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            continue;
        };
        let framed = [&reply_len.to_be_bytes()[..], &reply].concat();
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::net::{DnsError, NetError};
    use std::io::{Read, Write};

    async fn lookup(
        server: &DnsServer,
        name: &str,
        kind: RecordType,
    ) -> Result<Vec<RData>, NetError> {
        let lookup = server.resolver().lookup(name, kind).await?;
        Ok(lookup.answers().iter().map(|r| r.data.clone()).collect())
    }

    /// The character-strings of a single TXT answer.
    fn strings(answers: &[RData]) -> Vec<Vec<u8>> {
        match answers {
            [RData::TXT(txt)] => txt.txt_data.iter().map(|s| s.to_vec()).collect(),
            other => panic!("not one TXT record: {other:?}"),
        }
    }

    fn query_bytes(id: u16, name: &str) -> Vec<u8> {
        let mut query = Message::new(id, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(dns_name(name), RecordType::A));
        query.to_vec().expect("encode query")
    }

    #[tokio::test]
    async fn mx_answers_every_preference_case_insensitively_and_counts_the_query() {
        let mut zone = Zone::default();
        zone.mx("example.test", 10, "mx1.example.test").mx(
            "Example.TEST.",
            20,
            "mx2.example.test.",
        );
        let server = DnsServer::start(zone);
        let answers = lookup(&server, "EXAMPLE.test.", RecordType::MX)
            .await
            .expect("MX");
        let mx = |preference, exchange| RData::MX(MX::new(preference, dns_name(exchange)));
        assert_eq!(
            answers,
            [mx(10, "mx1.example.test"), mx(20, "mx2.example.test")]
        );
        assert_eq!(server.queries("example.test"), 1);
        assert_eq!(server.queries_of("Example.Test.", RecordType::MX), 1);
        assert_eq!(server.queries_of("example.test", RecordType::A), 0);
    }

    #[tokio::test]
    async fn a_aaaa_ptr_and_null_mx_are_answered() {
        let ip = Ipv4Addr::new(192, 0, 2, 7);
        let mut zone = Zone::default();
        zone.a("mx.example.test", ip)
            .aaaa("mx.example.test", Ipv6Addr::LOCALHOST);
        zone.ptr(ip.into(), "mx.example.test")
            .null_mx("nomail.test");
        let server = DnsServer::start(zone);
        let a = lookup(&server, "mx.example.test.", RecordType::A).await;
        assert_eq!(a.expect("A"), [RData::A(A(ip))]);
        let aaaa = lookup(&server, "mx.example.test.", RecordType::AAAA).await;
        assert_eq!(
            aaaa.expect("AAAA"),
            [RData::AAAA(AAAA(Ipv6Addr::LOCALHOST))]
        );
        let ptr = lookup(&server, "7.2.0.192.in-addr.arpa.", RecordType::PTR).await;
        assert_eq!(
            ptr.expect("PTR"),
            [RData::PTR(PTR(dns_name("mx.example.test")))]
        );
        let mx = lookup(&server, "nomail.test.", RecordType::MX).await;
        assert_eq!(mx.expect("null MX"), [RData::MX(MX::new(0, Name::root()))]);
    }

    #[tokio::test]
    async fn txt_longer_than_255_bytes_is_split_and_joins_back() {
        let key = format!("v=DKIM1; k=rsa; p={}", "A".repeat(600));
        let mut zone = Zone::default();
        zone.txt("sel._domainkey.example.test", &key);
        let server = DnsServer::start(zone);
        let answers = lookup(&server, "sel._domainkey.example.test.", RecordType::TXT).await;
        let strings = strings(&answers.expect("TXT"));
        assert_eq!(
            strings.iter().map(Vec::len).collect::<Vec<_>>(),
            [255, 255, key.len() - 510]
        );
        assert_eq!(strings.concat(), key.as_bytes());
    }

    #[tokio::test]
    async fn txt_strings_are_served_as_given_and_spf_type_99_alongside() {
        let mut zone = Zone::default();
        zone.txt_strings("multi.example.test", &["v=spf1 ip4:", "192.0.2.5 -all"])
            .txt_strings::<&[u8]>("empty.example.test", &[])
            .txt_strings("bytes.example.test", &[b"\xef\xbb\xbfhello\x96"])
            .spf_type("multi.example.test", &["v=spf1", " -all"]);
        let server = DnsServer::start(zone);
        let answers = lookup(&server, "multi.example.test.", RecordType::TXT).await;
        let strings: Vec<Vec<Vec<u8>>> = answers
            .expect("TXT")
            .iter()
            .map(|answer| match answer {
                RData::TXT(txt) => txt.txt_data.iter().map(|s| s.to_vec()).collect(),
                other => panic!("not TXT: {other:?}"),
            })
            .collect();
        let expected = [b"v=spf1 ip4:".to_vec(), b"192.0.2.5 -all".to_vec()];
        assert_eq!(strings, [expected]);
        // RFC 1035 wants at least one string; hickory's client refuses the answer that has none.
        let empty = lookup(&server, "empty.example.test.", RecordType::TXT).await;
        assert!(
            empty.as_ref().is_err_and(|e| !e.is_no_records_found()),
            "{empty:?}"
        );
        let bytes = lookup(&server, "bytes.example.test.", RecordType::TXT).await;
        assert_eq!(
            self::strings(&bytes.expect("TXT")),
            [b"\xef\xbb\xbfhello\x96".to_vec()]
        );
        let spf = lookup(&server, "multi.example.test.", SPF_RECORD_TYPE).await;
        match &spf.expect("SPF")[..] {
            [RData::Unknown { code, rdata }] => {
                assert_eq!(*code, SPF_RECORD_TYPE);
                assert_eq!(rdata.anything, b"\x06v=spf1\x05 -all");
            }
            other => panic!("not one SPF record: {other:?}"),
        }
        let none = lookup(&server, "bytes.example.test.", SPF_RECORD_TYPE).await;
        assert!(none.is_err_and(|e| e.is_no_records_found()));
    }

    #[tokio::test]
    async fn servfail_of_one_type_leaves_the_others_answered() {
        let mut zone = Zone::default();
        zone.a("half.example.test", Ipv4Addr::LOCALHOST)
            .servfail_type("half.example.test", RecordType::TXT);
        let server = DnsServer::start(zone);
        let a = lookup(&server, "half.example.test.", RecordType::A).await;
        assert_eq!(a.expect("A").len(), 1);
        let txt = lookup(&server, "half.example.test.", RecordType::TXT).await;
        let servfail = NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail));
        assert_eq!(txt.expect_err("SERVFAIL").to_string(), servfail.to_string());
        server.zone().remove("half.example.test");
        let gone = lookup(&server, "half.example.test.", RecordType::TXT).await;
        assert!(gone.as_ref().is_err_and(NetError::is_nx_domain), "{gone:?}");
    }

    #[tokio::test]
    async fn names_with_characters_no_host_name_has_are_answered() {
        let odd = "Foo:Bar/baz%20 x.example.test";
        let mut zone = Zone::default();
        zone.a(odd, Ipv4Addr::LOCALHOST)
            .mx("mx.example.test", 0, odd);
        let server = DnsServer::start(zone);
        let labels = ["foo:bar/BAZ%20 x", "example", "test"].map(str::as_bytes);
        let mut name = Name::from_labels(labels).expect("raw labels");
        name.set_fqdn(true);
        let a = server.resolver().lookup(name.clone(), RecordType::A).await;
        assert_eq!(a.expect("A").answers().len(), 1);
        let mx = lookup(&server, "mx.example.test.", RecordType::MX).await;
        assert_eq!(mx.expect("MX"), [RData::MX(MX::new(0, name))]);
    }

    #[tokio::test]
    async fn unknown_name_is_nxdomain_and_other_type_is_nodata() {
        let mut zone = Zone::default();
        zone.a("host.example.test", Ipv4Addr::LOCALHOST)
            .txt("_dmarc.sub.example.test", "v=DMARC1");
        let server = DnsServer::start(zone);
        let missing = lookup(&server, "nowhere.example.test.", RecordType::MX).await;
        assert!(
            missing.as_ref().is_err_and(NetError::is_nx_domain),
            "{missing:?}"
        );
        for name in ["host.example.test.", "sub.example.test."] {
            let nodata = lookup(&server, name, RecordType::MX)
                .await
                .expect_err("NODATA");
            assert!(
                nodata.is_no_records_found() && !nodata.is_nx_domain(),
                "{name}: {nodata:?}"
            );
        }
    }

    #[tokio::test]
    async fn servfail_can_be_switched_on_and_off_mid_test() {
        let mut zone = Zone::default();
        zone.mx("flaky.test", 10, "mx.flaky.test")
            .servfail("flaky.test");
        let server = DnsServer::start(zone);
        let failed = lookup(&server, "flaky.test.", RecordType::MX)
            .await
            .expect_err("SERVFAIL");
        let servfail = NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail));
        assert_eq!(failed.to_string(), servfail.to_string());
        server.set_servfail("FLAKY.test.", false);
        let answers = lookup(&server, "flaky.test.", RecordType::MX).await;
        assert_eq!(answers.expect("MX once SERVFAIL is cleared").len(), 1);
        server.zone().remove("flaky.test");
        let gone = lookup(&server, "flaky.test.", RecordType::MX).await;
        assert!(gone.as_ref().is_err_and(NetError::is_nx_domain), "{gone:?}");
        assert_eq!(server.queries("flaky.test"), 3, "no retries, no cache");
    }

    #[tokio::test]
    async fn cname_is_returned_with_the_target_records() {
        let ip = Ipv4Addr::new(192, 0, 2, 1);
        let mut zone = Zone::default();
        zone.cname("alias.example.test", "real.example.test")
            .a("real.example.test", ip);
        let server = DnsServer::start(zone);
        let answers = lookup(&server, "alias.example.test.", RecordType::A).await;
        let cname = RData::CNAME(CNAME(dns_name("real.example.test")));
        assert_eq!(answers.expect("A via CNAME"), [cname, RData::A(A(ip))]);
    }

    #[tokio::test]
    async fn answer_too_large_for_udp_is_truncated_and_retried_over_tcp() {
        let big = "x".repeat(3000);
        let mut zone = Zone::default();
        zone.txt("big.example.test", &big);
        let server = DnsServer::start(zone);
        let answers = lookup(&server, "big.example.test.", RecordType::TXT).await;
        assert_eq!(strings(&answers.expect("TXT")).concat(), big.as_bytes());
        let queries = server.queries("big.example.test");
        assert_eq!(queries, 2, "one UDP query, one TCP retry");
    }

    #[tokio::test]
    async fn garbage_is_ignored_and_the_server_keeps_answering() {
        let mut zone = Zone::default();
        zone.a("alive.example.test", Ipv4Addr::LOCALHOST);
        let server = DnsServer::start(zone);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("client socket");
        let cut_short = &query_bytes(1, "alive.example.test")[..20];
        for garbage in [&b""[..], b"\x00", &[0xff; 12], &[0x41; 3000], cut_short] {
            socket
                .send_to(garbage, server.addr())
                .expect("send garbage");
        }
        // Over TCP: a garbage frame, then two queries on the same connection.
        let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut frames = vec![0, 3, 1, 2, 3];
        for id in [7_u16, 8] {
            let query = query_bytes(id, "alive.example.test");
            frames.extend_from_slice(&u16::try_from(query.len()).expect("short").to_be_bytes());
            frames.extend_from_slice(&query);
        }
        stream.write_all(&frames).expect("write frames");
        for id in [7, 8] {
            let mut len = [0; 2];
            stream.read_exact(&mut len).expect("reply length");
            let mut reply = vec![0; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut reply).expect("reply");
            let reply = Message::from_vec(&reply).expect("decode reply");
            assert!(reply.metadata.id == id && reply.metadata.authoritative);
            assert_eq!(reply.queries[0].name(), &dns_name("alive.example.test"));
            assert_eq!(reply.answers.len(), 1);
        }
        let answers = lookup(&server, "alive.example.test.", RecordType::A).await;
        assert_eq!(answers.expect("A after garbage").len(), 1);
    }

    #[test]
    fn dropping_the_server_stops_it() {
        let server = DnsServer::start(Zone::default());
        let addr = server.addr();
        drop(server);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still listening on {addr}"
        );
    }
}
