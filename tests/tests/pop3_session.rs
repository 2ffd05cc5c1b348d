//! POP3 over TCP against the real access service, PostgreSQL, Redis and the object store, driven
//! by independent clients: Python's poplib (plus raw sockets for hostile input) and fetchmail.
//! Covers STLS and the plaintext policy, USER/PASS and AUTH PLAIN with RFC 2449/3206 response
//! codes, STAT/LIST/UIDL/TOP/RETR against the octets of the stored messages, deletion semantics
//! (RSET, QUIT, a dropped connection), the one-session-per-maildrop lock and garbage input.
//!
//! Messages reach the maildrop (the INBOX) through IMAP APPEND on the same server.

use mc_tests::TestDatabase;
use mc_tests::access::AccessProcess;
use mc_tests::smtp::{PASSWORD, seed_directory};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const HOSTNAME: &str = "imap.test.example";

async fn start() -> (TestDatabase, AccessProcess) {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let access = AccessProcess::start(&db, &mc_testkit::unique_prefix("pop3"), &[]);
    (db, access)
}

/// Shared by every script: clients, helpers that capture exact reply lines, the three messages.
const PRELUDE: &str = r#"
import base64, imaplib, json, os, poplib, random, socket, ssl, struct, time
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.check_hostname = False
PW = os.environ["PASSWORD"]
ALICE = "alice@example.test"
POP3_PORT = int(os.environ["POP3_PORT"])
POP3S_PORT = int(os.environ["POP3S_PORT"])
out = {}

def s(x):
    if isinstance(x, bytes): return x.decode("utf-8", "replace")
    if isinstance(x, (list, tuple)): return [s(i) for i in x]
    return x

def plain():
    return poplib.POP3("127.0.0.1", POP3_PORT, timeout=10)

def pops():
    return poplib.POP3_SSL("127.0.0.1", POP3S_PORT, context=ctx, timeout=10)

def login(user=ALICE):
    p = pops()
    p.user(user)
    p.pass_(PW)
    return p

def short(p, command):
    """The exact status line of a single-line command, +OK or -ERR."""
    try:
        return s(p._shortcmd(command))
    except poplib.error_proto as e:
        return s(e.args[0])

def call(f, *args):
    """The exact status line of a poplib call that may fail with -ERR."""
    try:
        r = f(*args)
        return s(r[0] if isinstance(r, tuple) else r)
    except poplib.error_proto as e:
        return s(e.args[0])

def multi(p, command):
    """Status line and lines of a multi-line command (un-stuffed by poplib)."""
    try:
        resp, lines, _ = p._longcmd(command)
        return [s(resp)] + s(lines)
    except poplib.error_proto as e:
        return [s(e.args[0])]

def login_when_free(user=ALICE, within=5.0):
    """Logs in, retrying while the maildrop is still locked; returns (session, replies seen)."""
    started, seen = time.monotonic(), []
    while True:
        p = pops()
        p.user(user)
        r = call(p.pass_, PW)
        seen.append(r)
        if r.startswith("+OK") or time.monotonic() - started > within:
            return p, seen
        p.quit()
        time.sleep(0.1)

def imap():
    m = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["IMAPS_PORT"]), ssl_context=ctx)
    m.login(ALICE, PW)
    return m

def append(*messages):
    m = imap()
    for message in messages:
        typ, data = m.append("INBOX", None, None, message)
        assert typ == "OK", (typ, data)
    m.logout()

def exists():
    m = imap()
    typ, data = m.select("INBOX")
    assert typ == "OK", (typ, data)
    m.logout()
    return int(data[0])

class Raw:
    """A bare socket, for input no POP3 library would send."""
    def __init__(self, port=POP3_PORT, tls=False):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = ctx.wrap_socket(sock) if tls else sock
        self.file = self.sock.makefile("rb")
    def line(self):
        """The next reply line without CRLF; None once closed; "TIMEOUT" if nothing came."""
        try:
            line = self.file.readline()
        except socket.timeout:
            return "TIMEOUT"
        except (ConnectionResetError, ssl.SSLError):
            return None
        return s(line.rstrip(b"\r\n")) if line else None
    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:  # the server may close first
            pass
    def cmd(self, data):
        self.send(data if isinstance(data, bytes) else data.encode() + b"\r\n")
        return self.line()
    def until_close(self):
        lines = []
        while True:
            line = self.line()
            if line is None or line == "TIMEOUT":
                return lines, line
            lines.append(line)

M1 = (b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: first\r\n\r\n"
      b"line one\r\nline two\r\nline three\r\n")
M2 = (b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: dots\r\n\r\n"
      b".leading dot\r\n..two dots\r\n.\r\nafter the lone dot\r\n")
# Larger than one ranged read of the object store (256 KiB), with dot lines spread through it.
M3 = (b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: big\r\n\r\n"
      + b"".join(b"%s%05d %s\r\n" % (b"." if i % 1000 == 0 else b"", i, b"x" * 50)
                 for i in range(6000)))
M4 = b"From: bob@example.test\r\nSubject: fourth\r\n\r\nfour\r\n"
MESSAGES = [M1, M2, M3]
out["sizes"] = [len(m) for m in MESSAGES]
"#;

fn script(body: &str) -> String {
    format!("{PRELUDE}\n{body}\nprint(json.dumps(out))")
}

fn strings(value: &Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"))
}

fn sizes(out: &Value) -> Vec<u64> {
    serde_json::from_value(out["sizes"].clone()).expect("sizes")
}

/// The reply line starts with `status` (e.g. `-ERR [AUTH]`) followed by a space or nothing.
fn assert_status(out: &Value, key: &str, status: &str) {
    let line = out[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a reply line: {out}"));
    assert!(
        line == status || line.starts_with(&format!("{status} ")),
        "{key}: expected `{status} ...`, got `{line}`\n{out}"
    );
}

#[tokio::test]
async fn plain_port_offers_stls_and_refuses_user_before_it() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
p = plain()
out["greeting"] = s(p.getwelcome())
out["capa_before"] = multi(p, "CAPA")
out["user_before"] = short(p, "USER " + ALICE)
out["pass_before"] = short(p, "PASS " + PW)
out["auth_before"] = short(p, "AUTH PLAIN " + base64.b64encode(("\0" + ALICE + "\0" + PW).encode()).decode())
out["stls"] = s(p.stls(context=ctx))
out["capa_after"] = multi(p, "CAPA")
out["stls_again"] = short(p, "STLS")
out["user"] = call(p.user, ALICE)
out["pass"] = call(p.pass_, PW)
out["stat"] = short(p, "STAT")
out["quit"] = call(p.quit)
"#,
    ));
    assert_eq!(out["greeting"], format!("+OK {HOSTNAME} POP3 server ready"));
    let before = strings(&out["capa_before"]);
    assert!(before[0].starts_with("+OK"), "{before:?}");
    assert!(before.contains(&"STLS".to_string()), "{before:?}");
    assert!(
        !before
            .iter()
            .any(|line| line == "USER" || line.starts_with("SASL")),
        "USER and SASL must not be offered in clear: {before:?}"
    );
    for key in ["user_before", "pass_before", "auth_before"] {
        assert_status(&out, key, "-ERR [AUTH]");
    }
    assert_status(&out, "stls", "+OK");
    let after = strings(&out["capa_after"]);
    assert!(after[0].starts_with("+OK"), "{after:?}");
    for capability in [
        "USER",
        "SASL PLAIN",
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
    ] {
        assert!(
            after.contains(&capability.to_string()),
            "{capability}: {after:?}"
        );
    }
    assert!(!after.contains(&"STLS".to_string()), "{after:?}");
    assert_status(&out, "stls_again", "-ERR");
    assert_status(&out, "user", "+OK");
    assert_eq!(
        out["pass"],
        "+OK logged in, maildrop has 0 messages (0 octets)"
    );
    assert_eq!(out["stat"], "+OK 0 0");
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (maildrop empty)")
    );
}

#[tokio::test]
async fn implicit_tls_port_offers_user_and_sasl_plain_and_logs_in() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
p = pops()
out["greeting"] = s(p.getwelcome())
out["capa"] = multi(p, "CAPA")
out["stls"] = short(p, "STLS")
out["user"] = call(p.user, ALICE)
out["pass"] = call(p.pass_, PW)
out["capa_transaction"] = multi(p, "CAPA")
out["noop"] = short(p, "NOOP")
out["quit"] = call(p.quit)
"#,
    ));
    assert_eq!(out["greeting"], format!("+OK {HOSTNAME} POP3 server ready"));
    let capa = strings(&out["capa"]);
    assert!(capa[0].starts_with("+OK"), "{capa:?}");
    assert!(
        capa.contains(&"USER".to_string()) && capa.contains(&"SASL PLAIN".to_string()),
        "{capa:?}"
    );
    assert!(!capa.contains(&"STLS".to_string()), "{capa:?}");
    assert_status(&out, "stls", "-ERR");
    assert_eq!(out["user"], "+OK send PASS");
    assert_eq!(
        out["pass"],
        "+OK logged in, maildrop has 0 messages (0 octets)"
    );
    let transaction = strings(&out["capa_transaction"]);
    assert!(transaction.contains(&"UIDL".to_string()), "{transaction:?}");
    assert_eq!(out["noop"], "+OK");
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (maildrop empty)")
    );
}

#[tokio::test]
async fn wrong_password_unknown_and_disabled_accounts_get_auth_code() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
for who, password in [
    ("wrong", (ALICE, "wrong password")),
    ("carol", ("carol@example.test", PW)),
    ("dave", ("dave@closed.test", PW)),
    ("nobody", ("nobody@example.test", PW)),
]:
    p = pops()
    out[who + "_user"] = call(p.user, password[0])
    out[who] = call(p.pass_, password[1])
    out[who + "_then"] = short(p, "STAT")
    p.quit()
p = pops()
out["pass_first"] = short(p, "PASS " + PW)
replies = []
for _ in range(3):
    replies.append(call(p.user, ALICE))
    replies.append(call(p.pass_, "wrong"))
out["three_failures"] = replies
r = Raw(POP3S_PORT, tls=True)
r.line()
for _ in range(2):
    r.cmd("USER " + ALICE); r.cmd("PASS wrong")
r.cmd("USER " + ALICE)
out["third_failure"] = r.cmd("PASS wrong")
out["after_third"] = r.line()
"#,
    ));
    for who in ["wrong", "carol", "dave", "nobody"] {
        // USER must not tell whether the account exists.
        assert_eq!(out[format!("{who}_user")], "+OK send PASS", "{out}");
        assert_status(&out, who, "-ERR [AUTH]");
        assert_status(&out, &format!("{who}_then"), "-ERR");
    }
    assert_eq!(out["wrong"], out["nobody"], "same text for every refusal");
    assert_status(&out, "pass_first", "-ERR");
    assert_status(&out, "third_failure", "-ERR [AUTH]");
    assert_eq!(
        out["after_third"],
        Value::Null,
        "closed after 3 failures: {out}"
    );
    let log = access.log_text();
    assert!(
        !log.contains(PASSWORD),
        "password in the server log:\n{log}"
    );
}

#[tokio::test]
async fn auth_plain_logs_in_with_initial_response_and_continuation() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
def b64(user, password):
    return base64.b64encode(("\0" + user + "\0" + password).encode()).decode()
p = pops()
out["initial"] = short(p, "AUTH PLAIN " + b64(ALICE, PW))
out["stat"] = short(p, "STAT")
p.quit()
p = pops()
out["continuation"] = short(p, "AUTH PLAIN")
out["response"] = short(p, b64(ALICE, PW))
p.quit()
p = pops()
out["mechanisms"] = multi(p, "AUTH")
out["wrong"] = short(p, "AUTH PLAIN " + b64(ALICE, "wrong"))
out["cancel_prompt"] = short(p, "AUTH PLAIN")
out["cancel"] = short(p, "*")
out["bad_base64_prompt"] = short(p, "AUTH PLAIN")
out["bad_base64"] = short(p, "!!!not base64!!!")
out["unknown_mechanism"] = short(p, "AUTH CRAM-MD5")
out["disabled"] = short(p, "AUTH PLAIN " + b64("carol@example.test", PW))
out["then"] = short(p, "AUTH PLAIN " + b64(ALICE, PW))
p.quit()
"#,
    ));
    assert_eq!(
        out["initial"],
        "+OK logged in, maildrop has 0 messages (0 octets)"
    );
    assert_eq!(out["stat"], "+OK 0 0");
    assert_status(&out, "continuation", "+");
    assert_eq!(
        out["response"],
        "+OK logged in, maildrop has 0 messages (0 octets)"
    );
    assert_eq!(
        out["mechanisms"],
        serde_json::json!(["+OK SASL mechanisms follow", "PLAIN"])
    );
    assert_status(&out, "wrong", "-ERR [AUTH]");
    assert_status(&out, "cancel_prompt", "+");
    assert_status(&out, "cancel", "-ERR");
    assert_status(&out, "bad_base64", "-ERR");
    assert_status(&out, "unknown_mechanism", "-ERR");
    assert_status(&out, "disabled", "-ERR [AUTH]");
    assert_eq!(
        out["then"],
        "+OK logged in, maildrop has 0 messages (0 octets)"
    );
    let log = access.log_text();
    assert!(
        !log.contains(PASSWORD),
        "password in the server log:\n{log}"
    );
}

#[tokio::test]
async fn stat_list_and_retr_give_exact_sizes_and_messages() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = pops()
p.user(ALICE)
out["login"] = call(p.pass_, PW)
out["stat"] = short(p, "STAT")
out["list"] = multi(p, "LIST")
out["list_each"] = [short(p, "LIST %d" % n) for n in (1, 2, 3)]
out["retr_status"] = []
out["retr_equal"] = []
out["retr_octets"] = []
for n, message in enumerate(MESSAGES, 1):
    resp, lines, octets = p.retr(n)
    got = b"\r\n".join(lines) + b"\r\n"
    out["retr_status"].append(s(resp))
    out["retr_equal"].append(got == message)
    out["retr_octets"].append(octets)
    if got != message:
        diff = next((i for i, (a, b) in enumerate(zip(got, message)) if a != b), min(len(got), len(message)))
        out["retr_diff_%d" % n] = [s(got[max(0, diff - 40):diff + 40]), s(message[max(0, diff - 40):diff + 40])]
out["retr_2_lines"] = s(p.retr(2)[1])
out["retr_again"] = short(p, "NOOP")
out["quit"] = call(p.quit)
"#,
    ));
    let sizes = sizes(&out);
    let total: u64 = sizes.iter().sum();
    assert_eq!(
        out["login"],
        format!("+OK logged in, maildrop has 3 messages ({total} octets)")
    );
    assert_eq!(out["stat"], format!("+OK 3 {total}"));
    let mut listing = vec![format!("+OK 3 messages ({total} octets)")];
    listing.extend(
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| format!("{} {size}", i + 1)),
    );
    assert_eq!(strings(&out["list"]), listing);
    let each: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(i, size)| format!("+OK {} {size}", i + 1))
        .collect();
    assert_eq!(strings(&out["list_each"]), each);
    let retr: Vec<String> = sizes
        .iter()
        .map(|size| format!("+OK {size} octets"))
        .collect();
    assert_eq!(strings(&out["retr_status"]), retr);
    assert_eq!(
        out["retr_equal"],
        serde_json::json!([true, true, true]),
        "{out}"
    );
    assert_eq!(out["retr_octets"], serde_json::json!(sizes));
    assert_eq!(
        strings(&out["retr_2_lines"]),
        [
            "From: bob@example.test",
            "To: alice@example.test",
            "Subject: dots",
            "",
            ".leading dot",
            "..two dots",
            ".",
            "after the lone dot",
        ]
    );
    assert_eq!(out["retr_again"], "+OK");
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (3 messages left)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_delivered_over_smtp_is_retrieved_with_sizes_matching_the_octets_sent() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let prefix = mc_testkit::unique_prefix("pop3-delivery");
    let shared = [("MAILCLUSTER_REDIS__KEY_PREFIX", prefix.as_str())];
    let ingress = mc_tests::IngressProcess::start(&db, &shared);
    let worker = mc_tests::delivery::WorkerProcess::start(&db, &ingress.s3_prefix, &shared);
    let access = AccessProcess::start(&db, &ingress.s3_prefix, &[]);
    let sent = access.python(&script(&format!(
        r#"
import smtplib
with smtplib.SMTP("127.0.0.1", {mx}, timeout=10) as smtp:
    smtp.sendmail("sender@remote.test", ["alice@example.test"], M1)
    # One message for two mailboxes, with dot lines.
    smtp.sendmail("sender@remote.test", ["bob@example.test", "alice@example.test"], M2)
"#,
        mx = ingress.mx_port
    )));
    assert!(sent.is_object());
    let started = std::time::Instant::now();
    while mc_tests::delivery::inbox(&db, "alice@example.test")
        .await
        .len()
        < 2
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "not delivered; worker log:\n{}",
            worker.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = access.python(&script(
        r#"
m = imap()
m.select("INBOX")
typ, data = m.fetch("1:2", "(RFC822.SIZE)")
out["imap_sizes"] = s(data)
m.logout()
p = login()
out["list"] = multi(p, "LIST")
out["retr"] = []
for n, sent in [(1, M1), (2, M2)]:
    resp, lines, octets = p.retr(n)
    got = b"\r\n".join(lines) + b"\r\n"
    out["retr"].append([s(resp), octets, got.endswith(sent.split(b"\r\n\r\n", 1)[1]),
                        sent.split(b"\r\n")[2] in lines])
p.quit()
"#,
    ));
    let list = strings(&out["list"]);
    assert_eq!(list.len(), 3, "{out}");
    for (n, retr) in out["retr"].as_array().expect("retr").iter().enumerate() {
        let octets = retr[1].as_u64().expect("octets");
        assert_eq!(
            list[n + 1],
            format!("{} {octets}", n + 1),
            "LIST vs octets sent: {out}"
        );
        assert_eq!(retr[0], format!("+OK {octets} octets"), "{out}");
        assert_eq!(retr[2], true, "body intact: {out}");
        assert_eq!(retr[3], true, "subject intact: {out}");
        assert!(
            out["imap_sizes"]
                .to_string()
                .contains(&format!("RFC822.SIZE {octets}")),
            "IMAP and POP3 disagree on the size: {out}"
        );
    }
}

#[tokio::test]
async fn top_returns_the_header_and_n_body_lines() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = login()
def top(n, k):
    try:
        resp, lines, _ = p.top(n, k)
        return [s(resp)] + s(lines)
    except poplib.error_proto as e:
        return [s(e.args[0])]
out["top_1_2"] = top(1, 2)
out["top_1_0"] = top(1, 0)
out["top_2_2"] = top(2, 2)
out["top_1_99"] = top(1, 99)
out["top_3_2"] = top(3, 2)
head, body = M3.split(b"\r\n\r\n", 1)
out["top_3_2_expected"] = s(head.split(b"\r\n") + [b""] + body.split(b"\r\n")[:2])
out["top_4_1"] = top(4, 1)
out["top_missing_count"] = short(p, "TOP 1")
out["top_bad_count"] = short(p, "TOP 1 -1")
out["noop"] = short(p, "NOOP")
p.quit()
"#,
    ));
    let ok = "+OK top of message follows";
    let header = [
        "From: bob@example.test",
        "To: alice@example.test",
        "Subject: first",
        "",
    ];
    let with = |body: &[&str]| -> Vec<String> {
        std::iter::once(ok)
            .chain(header)
            .chain(body.iter().copied())
            .map(String::from)
            .collect()
    };
    assert_eq!(strings(&out["top_1_2"]), with(&["line one", "line two"]));
    assert_eq!(strings(&out["top_1_0"]), with(&[]));
    assert_eq!(
        strings(&out["top_1_99"]),
        with(&["line one", "line two", "line three"])
    );
    assert_eq!(
        strings(&out["top_2_2"]),
        [
            ok,
            "From: bob@example.test",
            "To: alice@example.test",
            "Subject: dots",
            "",
            ".leading dot",
            "..two dots",
        ]
    );
    let mut big = vec![ok.to_string()];
    big.extend(strings(&out["top_3_2_expected"]));
    assert_eq!(strings(&out["top_3_2"]), big);
    assert_eq!(out["top_4_1"], serde_json::json!(["-ERR no such message"]));
    assert_status(&out, "top_missing_count", "-ERR");
    assert_status(&out, "top_bad_count", "-ERR");
    assert_eq!(out["noop"], "+OK");
}

#[tokio::test]
async fn uidl_is_stable_across_sessions_and_deletions() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = login()
out["first"] = multi(p, "UIDL")
out["first_each"] = [short(p, "UIDL %d" % n) for n in (1, 2, 3)]
p.quit()
p = login()
out["second"] = multi(p, "UIDL")
out["dele"] = short(p, "DELE 2")
out["after_dele"] = multi(p, "UIDL")
out["quit"] = call(p.quit)
p = login()
out["third"] = multi(p, "UIDL")
p.quit()
"#,
    ));
    let first = strings(&out["first"]);
    assert_eq!(first[0], "+OK unique-id listing follows", "{first:?}");
    assert_eq!(first.len(), 4, "{first:?}");
    let uids: Vec<String> = first[1..]
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let (number, uid) = line.split_once(' ').expect("`n uid`");
            assert_eq!(number, (i + 1).to_string(), "{line}");
            // RFC 1939 section 7: 1 to 70 characters in 0x21..=0x7E.
            assert!(
                (1..=70).contains(&uid.len()) && uid.bytes().all(|b| (0x21..=0x7e).contains(&b)),
                "{uid}"
            );
            uid.to_string()
        })
        .collect();
    let mut distinct = uids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{uids:?}");
    let each: Vec<String> = uids
        .iter()
        .enumerate()
        .map(|(i, uid)| format!("+OK {} {uid}", i + 1))
        .collect();
    assert_eq!(strings(&out["first_each"]), each);
    assert_eq!(out["second"], out["first"], "same ids in a second session");
    assert_eq!(out["dele"], "+OK message 2 deleted");
    assert_eq!(
        strings(&out["after_dele"]),
        [
            "+OK unique-id listing follows".to_string(),
            format!("1 {}", uids[0]),
            format!("3 {}", uids[2]),
        ],
        "a deleted message is left out, the others keep their numbers"
    );
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (2 messages left)")
    );
    assert_eq!(
        strings(&out["third"]),
        [
            "+OK unique-id listing follows".to_string(),
            format!("1 {}", uids[0]),
            format!("2 {}", uids[2]),
        ],
        "after the deletion the remaining messages keep their unique ids"
    );
}

#[tokio::test]
async fn unique_ids_are_not_reused_after_the_inbox_is_renamed() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = login()
out["before"] = multi(p, "UIDL")[1:]
p.quit()
m = imap()
out["rename"] = s(m.rename("INBOX", "Archive"))
m.logout()
append(M4)
p = login()
out["after"] = multi(p, "UIDL")[1:]
out["top"] = [s(l) for l in p.top(1, 0)[1] if l.startswith(b"Subject:")]
p.quit()
"#,
    ));
    assert_eq!(out["rename"][0], "OK", "{out}");
    assert_eq!(out["top"], serde_json::json!(["Subject: fourth"]), "{out}");
    let before: Vec<String> = strings(&out["before"])
        .iter()
        .map(|l| l.split_once(' ').expect("`n uid`").1.to_string())
        .collect();
    let after = strings(&out["after"]);
    assert_eq!(after.len(), 1, "{out}");
    let new = after[0].split_once(' ').expect("`n uid`").1;
    // RFC 1939 section 7 (UIDL): a unique-id is never reused in a maildrop, else a client that
    // leaves mail on the server (fetchmail keep + uidl) skips the new message as already seen.
    assert!(
        !before.iter().any(|uid| uid == new),
        "new message got the unique id {new} of an earlier message: {before:?}"
    );
}

#[tokio::test]
async fn rset_restores_messages_marked_deleted() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = login()
out["dele_1"] = short(p, "DELE 1")
out["dele_3"] = short(p, "DELE 3")
out["stat_marked"] = short(p, "STAT")
out["rset"] = short(p, "RSET")
out["stat_reset"] = short(p, "STAT")
out["list_reset"] = multi(p, "LIST")
out["retr_1"] = call(p.retr, 1)
out["quit"] = call(p.quit)
p = login()
out["stat_next"] = short(p, "STAT")
p.quit()
out["exists"] = exists()
"#,
    ));
    let sizes = sizes(&out);
    let total: u64 = sizes.iter().sum();
    assert_eq!(out["dele_1"], "+OK message 1 deleted");
    assert_eq!(out["dele_3"], "+OK message 3 deleted");
    assert_eq!(out["stat_marked"], format!("+OK 1 {}", sizes[1]));
    assert_eq!(
        out["rset"],
        format!("+OK maildrop has 3 messages ({total} octets)")
    );
    assert_eq!(out["stat_reset"], format!("+OK 3 {total}"));
    assert_eq!(strings(&out["list_reset"]).len(), 4, "{out}");
    assert_eq!(out["retr_1"], format!("+OK {} octets", sizes[0]));
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (3 messages left)")
    );
    assert_eq!(out["stat_next"], format!("+OK 3 {total}"));
    assert_eq!(out["exists"], 3);
}

#[tokio::test]
async fn quit_removes_deleted_messages_for_pop3_and_imap() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = login()
out["dele"] = short(p, "DELE 1")
out["quit"] = call(p.quit)
p = login()
out["stat"] = short(p, "STAT")
out["retr_1"] = [s(l) for l in p.retr(1)[1]]
p.quit()
out["exists"] = exists()
"#,
    ));
    let sizes = sizes(&out);
    assert_eq!(out["dele"], "+OK message 1 deleted");
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (2 messages left)")
    );
    assert_eq!(out["stat"], format!("+OK 2 {}", sizes[1] + sizes[2]));
    assert_eq!(
        out["retr_1"][2], "Subject: dots",
        "the old message 2 is now 1: {out}"
    );
    assert_eq!(out["exists"], 2);
}

#[tokio::test]
async fn a_connection_dropped_without_quit_deletes_nothing() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = login()
out["dele"] = short(p, "DELE 1")
out["dele_2"] = short(p, "DELE 2")
p.sock.close()
p.file.close()
p, out["attempts"] = login_when_free()
out["stat"] = short(p, "STAT")
# Again with a reset instead of an orderly close.
out["dele_again"] = short(p, "DELE 3")
p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
p.sock.close()
p.file.close()
p, out["attempts_after_reset"] = login_when_free()
out["stat_after_reset"] = short(p, "STAT")
p.quit()
out["exists"] = exists()
"#,
    ));
    let total: u64 = sizes(&out).iter().sum();
    assert_eq!(out["dele"], "+OK message 1 deleted");
    assert_eq!(out["dele_again"], "+OK message 3 deleted");
    assert_eq!(out["stat"], format!("+OK 3 {total}"), "{out}");
    assert_eq!(out["stat_after_reset"], format!("+OK 3 {total}"), "{out}");
    assert_eq!(out["exists"], 3);
}

#[tokio::test]
async fn a_deleted_message_cannot_be_referenced_again() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = login()
out["dele"] = short(p, "DELE 2")
out["dele_again"] = short(p, "DELE 2")
out["retr"] = short(p, "RETR 2")
out["top"] = short(p, "TOP 2 1")
out["list_one"] = short(p, "LIST 2")
out["uidl_one"] = short(p, "UIDL 2")
out["list"] = multi(p, "LIST")
out["stat"] = short(p, "STAT")
out["retr_missing"] = short(p, "RETR 4")
out["retr_zero"] = short(p, "RETR 0")
out["dele_missing"] = short(p, "DELE 9")
out["retr_3"] = call(p.retr, 3)
out["noop"] = short(p, "NOOP")
p.quit()
"#,
    ));
    let sizes = sizes(&out);
    assert_eq!(out["dele"], "+OK message 2 deleted");
    for key in ["dele_again", "retr", "top", "list_one", "uidl_one"] {
        assert_status(&out, key, "-ERR");
    }
    assert_eq!(
        strings(&out["list"]),
        [
            format!("+OK 2 messages ({} octets)", sizes[0] + sizes[2]),
            format!("1 {}", sizes[0]),
            format!("3 {}", sizes[2]),
        ]
    );
    assert_eq!(out["stat"], format!("+OK 2 {}", sizes[0] + sizes[2]));
    for key in ["retr_missing", "retr_zero", "dele_missing"] {
        assert_status(&out, key, "-ERR");
    }
    assert_eq!(out["retr_3"], format!("+OK {} octets", sizes[2]));
    assert_eq!(out["noop"], "+OK");
}

#[tokio::test]
async fn commands_of_the_other_state_are_refused() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(M1)
p = pops()
out["before"] = [short(p, c) for c in ["STAT", "LIST 1", "RETR 1", "DELE 1", "RSET", "NOOP", "UIDL 1", "TOP 1 1"]]
p.quit()
p = login()
out["after"] = [short(p, c) for c in ["USER " + ALICE, "PASS " + PW, "STLS", "AUTH PLAIN"]]
out["stat"] = short(p, "STAT")
out["quit"] = call(p.quit)
"#,
    ));
    for reply in strings(&out["before"])
        .iter()
        .chain(&strings(&out["after"]))
    {
        assert!(reply.starts_with("-ERR"), "{reply}: {out}");
    }
    assert!(
        out["stat"].as_str().unwrap_or("").starts_with("+OK 1 "),
        "{out}"
    );
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (1 message left)")
    );
}

#[tokio::test]
async fn a_second_session_gets_in_use_until_the_first_quits() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
first = login()
first.dele(1)
second = pops()
out["second_user"] = call(second.user, ALICE)
out["second_wrong"] = call(second.pass_, "wrong password")
second.user(ALICE)
out["second"] = call(second.pass_, PW)
out["second_then"] = short(second, "STAT")
bob = pops()
bob.user("bob@example.test")
out["other_account"] = call(bob.pass_, PW)
bob.quit()
out["first_still"] = short(first, "NOOP")
out["first_quit"] = call(first.quit)
second.user(ALICE)
out["after_quit"] = call(second.pass_, PW)
out["after_quit_stat"] = short(second, "STAT")
second.quit()
"#,
    ));
    let sizes = sizes(&out);
    assert_eq!(out["second_user"], "+OK send PASS");
    // RFC 2449 section 8.1.1 / RFC 3206: [IN-USE] only once the credentials are right.
    assert_status(&out, "second_wrong", "-ERR [AUTH]");
    assert_status(&out, "second", "-ERR [IN-USE]");
    assert_status(&out, "second_then", "-ERR");
    assert!(
        out["other_account"]
            .as_str()
            .unwrap_or("")
            .starts_with("+OK logged in"),
        "{out}"
    );
    assert_eq!(out["first_still"], "+OK");
    assert_eq!(
        out["first_quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (2 messages left)")
    );
    assert_eq!(
        out["after_quit"],
        format!(
            "+OK logged in, maildrop has 2 messages ({} octets)",
            sizes[1] + sizes[2]
        )
    );
    assert_eq!(
        out["after_quit_stat"],
        format!("+OK 2 {}", sizes[1] + sizes[2])
    );
}

#[tokio::test]
async fn the_lock_is_released_when_the_holder_drops_the_connection() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
first = login()
second = pops()
second.user(ALICE)
out["while_held"] = call(second.pass_, PW)
second.quit()
first.sock.close()
first.file.close()
p, out["attempts"] = login_when_free()
out["stat"] = short(p, "STAT")
# Killed: the socket is reset, not closed in order.
p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
p.sock.close()
p.file.close()
p, out["attempts_after_reset"] = login_when_free()
p.quit()
"#,
    ));
    assert_status(&out, "while_held", "-ERR [IN-USE]");
    for key in ["attempts", "attempts_after_reset"] {
        let attempts = strings(&out[key]);
        assert!(
            attempts
                .last()
                .is_some_and(|r| r.starts_with("+OK logged in")),
            "{key}: the lock was not released within 5 s of the connection ending: {attempts:?}"
        );
    }
    assert_eq!(out["stat"], "+OK 0 0");
}

#[tokio::test]
async fn a_process_killed_in_a_session_releases_the_lock() {
    let (_db, access) = start().await;
    let mut child = spawn_python(
        &access,
        r#"
p = login()
print(short(p, "STAT"), flush=True)
time.sleep(600)
"#,
    );
    assert_eq!(next_line(&mut child).trim_end(), "+OK 0 0");
    let held = access.python(&script(
        r#"
p = pops()
p.user(ALICE)
out["while_held"] = call(p.pass_, PW)
"#,
    ));
    child.kill().expect("kill the holder");
    child.wait().expect("reap the holder");
    let out = access.python(&script(
        r#"
p, out["attempts"] = login_when_free()
p.quit()
"#,
    ));
    assert_status(&held, "while_held", "-ERR [IN-USE]");
    let attempts = strings(&out["attempts"]);
    assert!(
        attempts
            .last()
            .is_some_and(|r| r.starts_with("+OK logged in")),
        "lock not released within 5 s of the holder being killed: {attempts:?}"
    );
}

#[tokio::test]
async fn the_lock_holds_across_replicas_of_the_cluster() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let (s3, redis) = (
        mc_testkit::unique_prefix("pop3"),
        mc_testkit::unique_prefix("access"),
    );
    let one = AccessProcess::start_shared(&db, &s3, &redis, &[]);
    let two = AccessProcess::start_shared(&db, &s3, &redis, &[]);
    let mut holder = spawn_python(
        &one,
        r#"
p = login()
print(short(p, "STAT"), flush=True)
time.sleep(600)
"#,
    );
    assert_eq!(next_line(&mut holder).trim_end(), "+OK 0 0");
    let held = two.python(&script(
        r#"
p = pops()
p.user(ALICE)
out["while_held"] = call(p.pass_, PW)
"#,
    ));
    holder.kill().expect("kill the holder");
    holder.wait().expect("reap the holder");
    let out = two.python(&script(
        r#"
p, out["attempts"] = login_when_free()
p.quit()
"#,
    ));
    assert_status(&held, "while_held", "-ERR [IN-USE]");
    let attempts = strings(&out["attempts"]);
    assert!(
        attempts
            .last()
            .is_some_and(|r| r.starts_with("+OK logged in")),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn garbage_lines_get_err_and_the_session_goes_on() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
out["greeting"] = r.line()
out["binary"] = r.cmd(b"\x00\xff\xfe\x01garbage\x80\x1b[0m\r\n")
out["overlong"] = r.cmd(b"A" * 5000 + b"\r\n")
out["unknown"] = r.cmd("XYZZY")
out["empty"] = r.cmd("")
out["apop"] = r.cmd("APOP alice@example.test c4c9334bac560ecc979e58001b3e22fb")
out["bare_lf"] = r.cmd(b"CAPA\n")
capa = [out["bare_lf"]]
while capa[-1] not in (".", None, "TIMEOUT"):
    capa.append(r.line())
out["capa"] = capa
out["quit"] = r.cmd("QUIT")
out["closed"] = r.line()
# The same on a TLS session in TRANSACTION.
append(M1)
r = Raw(POP3S_PORT, tls=True)
r.line()
r.cmd("USER " + ALICE)
out["login"] = r.cmd("PASS " + PW)
out["t_binary"] = r.cmd(b"\xff\xfe\xfd\x00\r\n")
out["t_overlong"] = r.cmd(b"RETR " + b"1" * 3000 + b"\r\n")
out["t_unknown"] = r.cmd("LAST")
out["t_stat"] = r.cmd("STAT")
out["t_quit"] = r.cmd("QUIT")
"#,
    ));
    assert_eq!(out["greeting"], format!("+OK {HOSTNAME} POP3 server ready"));
    for key in [
        "binary",
        "overlong",
        "unknown",
        "empty",
        "apop",
        "t_binary",
        "t_overlong",
        "t_unknown",
    ] {
        assert_status(&out, key, "-ERR");
    }
    let capa = strings(&out["capa"]);
    assert!(
        capa[0].starts_with("+OK") && capa.last().is_some_and(|l| l == "."),
        "{capa:?}"
    );
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off")
    );
    assert_eq!(out["closed"], Value::Null);
    assert!(
        out["login"]
            .as_str()
            .unwrap_or("")
            .starts_with("+OK logged in"),
        "{out}"
    );
    assert!(
        out["t_stat"].as_str().unwrap_or("").starts_with("+OK 1 "),
        "{out}"
    );
    assert_status(&out, "t_quit", "+OK");
}

#[tokio::test]
async fn a_line_of_512_octets_is_a_command_and_513_is_too_long() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw(POP3S_PORT, tls=True)
r.line()
out["fits"] = r.cmd("USER " + "a" * 507)
out["too_long"] = r.cmd("USER " + "a" * 508)
out["then"] = r.cmd("CAPA")
"#,
    ));
    assert_eq!(out["fits"], "+OK send PASS");
    assert_status(&out, "too_long", "-ERR");
    assert_status(&out, "then", "+OK");
}

#[tokio::test]
async fn too_many_bad_commands_end_the_session() {
    // The limit is the service's `max_bad_commands` (20 by default); this test sets 10.
    let (_db, access) = start_with(&[("MAILCLUSTER_ACCESS__MAX_BAD_COMMANDS", "10")]).await;
    let out = access.python(&script(
        r#"
r = Raw()
r.line()
out["replies"] = [r.cmd("XYZZY %d" % i) for i in range(10)]
out["after"] = r.line()
"#,
    ));
    let replies = strings(&out["replies"]);
    assert_eq!(replies.len(), 10);
    for reply in &replies[..9] {
        assert!(reply.starts_with("-ERR"), "{replies:?}");
    }
    assert_eq!(replies[9], "-ERR too many errors, closing connection");
    assert_eq!(
        out["after"],
        Value::Null,
        "closed after the 10th error: {out}"
    );
}

#[tokio::test]
async fn too_many_errors_in_transaction_close_without_deleting() {
    // The limit is the service's `max_bad_commands` (20 by default); this test sets 10.
    let (_db, access) = start_with(&[("MAILCLUSTER_ACCESS__MAX_BAD_COMMANDS", "10")]).await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
r = Raw(POP3S_PORT, tls=True)
r.line()
r.cmd("USER " + ALICE)
out["login"] = r.cmd("PASS " + PW)
out["dele"] = r.cmd("DELE 1")
out["replies"] = [r.cmd("RETR x%d" % i) for i in range(10)]
out["after"] = r.line()
p, out["attempts"] = login_when_free()
out["stat"] = short(p, "STAT")
p.quit()
"#,
    ));
    assert_eq!(out["dele"], "+OK message 1 deleted");
    let replies = strings(&out["replies"]);
    assert_eq!(
        replies[9], "-ERR too many errors, closing connection",
        "{replies:?}"
    );
    assert_eq!(out["after"], Value::Null);
    let total: u64 = sizes(&out).iter().sum();
    assert_eq!(out["stat"], format!("+OK 3 {total}"), "{out}");
}

#[tokio::test]
async fn too_many_lines_before_login_end_the_session() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
r.line()
replies = []
for _ in range(31):
    line = r.cmd("NOOP")
    replies.append(line)
    if line is None or "closing" in line:
        break
out["replies"] = replies
out["after"] = r.line()
"#,
    ));
    let replies = strings(&out["replies"]);
    assert!(replies.len() <= 31, "{replies:?}");
    assert!(replies.iter().all(|r| r.starts_with("-ERR")), "{replies:?}");
    assert!(
        replies
            .last()
            .is_some_and(|r| r.contains("closing connection")),
        "{replies:?}"
    );
    assert_eq!(out["after"], Value::Null);
}

#[tokio::test]
async fn random_bytes_end_the_session_without_hanging_the_server() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
rng = random.Random(1939)
endings = []
for tls, port in [(False, POP3_PORT), (True, POP3S_PORT)]:
    r = Raw(port, tls=tls)
    r.line()
    r.send(bytes(rng.getrandbits(8) for _ in range(65536)))
    lines, end = r.until_close()
    endings.append([lines, end])
out["endings"] = endings
# Half a line, then the client goes away.
r = Raw()
r.line()
r.send(b"USER half-a-line-with-no-end")
r.sock.close()
# Bytes that are not TLS on the TLS port.
sock = socket.create_connection(("127.0.0.1", POP3S_PORT), timeout=10)
sock.sendall(b"USER alice\r\n" + bytes(rng.getrandbits(8) for _ in range(4096)))
try:
    out["not_tls"] = s(sock.recv(100))
except (socket.timeout, ConnectionResetError) as e:
    out["not_tls"] = type(e).__name__
sock.close()
p = pops()
out["still_serving"] = s(p.getwelcome())
p.quit()
"#,
    ));
    for (i, ending) in out["endings"]
        .as_array()
        .expect("endings")
        .iter()
        .enumerate()
    {
        let lines = strings(&ending[0]);
        assert!(
            lines.iter().all(|l| l.starts_with("-ERR")),
            "connection {i}: {lines:?}"
        );
        assert_eq!(
            ending[1],
            Value::Null,
            "connection {i} not closed: {ending}"
        );
    }
    assert_ne!(out["not_tls"], "timeout", "{out}");
    assert_eq!(
        out["still_serving"],
        format!("+OK {HOSTNAME} POP3 server ready")
    );
}

#[tokio::test]
async fn a_maildrop_is_a_snapshot_and_survives_an_imap_expunge() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = login()
out["stat_before"] = short(p, "STAT")
m = imap()
m.select("INBOX")
m.store("2", "+FLAGS", "\\Deleted")
m.expunge()
m.append("INBOX", None, None, M4)
m.logout()
out["stat_during"] = short(p, "STAT")
out["retr_expunged"] = short(p, "RETR 2")
out["retr_1"] = call(p.retr, 1)
out["dele_1"] = short(p, "DELE 1")
out["quit"] = call(p.quit)
p = login()
out["stat_after"] = short(p, "STAT")
out["subjects"] = [[s(l) for l in p.top(n, 0)[1] if l.startswith(b"Subject:")][0] for n in (1, 2)]
p.quit()
"#,
    ));
    let sizes = sizes(&out);
    let total: u64 = sizes.iter().sum();
    assert_eq!(out["stat_before"], format!("+OK 3 {total}"));
    assert_eq!(
        out["stat_during"],
        format!("+OK 3 {total}"),
        "RFC 1939: the listing is fixed for the session"
    );
    assert_status(&out, "retr_expunged", "-ERR");
    assert_eq!(out["retr_1"], format!("+OK {} octets", sizes[0]));
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (2 messages left)")
    );
    assert!(
        out["stat_after"]
            .as_str()
            .unwrap_or("")
            .starts_with("+OK 2 "),
        "{out}"
    );
    assert_eq!(
        out["subjects"],
        serde_json::json!(["Subject: big", "Subject: fourth"])
    );
}

/// Starts a Python script that keeps running (a client holding a session); it sees the same
/// environment as [`AccessProcess::python`].
fn spawn_python(access: &AccessProcess, body: &str) -> std::process::Child {
    Command::new(mc_tests::sink::venv_python())
        .arg("-c")
        .arg(script(body))
        .env("IMAP_PORT", access.imap_port.to_string())
        .env("IMAPS_PORT", access.imaps_port.to_string())
        .env("POP3_PORT", access.pop3_port.to_string())
        .env("POP3S_PORT", access.pop3s_port.to_string())
        .env("CA_FILE", &access.cert)
        .env("PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a python client")
}

/// The next line the spawned client prints.
fn next_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("client output");
    line
}

#[tokio::test]
async fn pipelined_and_split_commands_are_answered_in_order() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
r = Raw(POP3S_PORT, tls=True)
r.line()
for piece in [b"US", b"ER " + ALICE.encode() + b"\r", b"\n"]:
    r.send(piece)
    time.sleep(0.05)
out["user_split"] = r.line()
out["pass"] = r.cmd("PASS " + PW)
r.send(b"STAT\r\nLIST 1\r\nRETR 3\r\nUIDL 1\r\nDELE 2\r\nNOOP\r\nQUIT\r\n")
out["stat"] = r.line()
out["list_1"] = r.line()
out["retr"] = r.line()
body = []
while True:
    line = r.file.readline()
    if line in (b".\r\n", b""):
        break
    body.append(line[1:] if line.startswith(b"..") else line)
out["retr_equal"] = b"".join(body) == M3
out["uidl_1"] = r.line()
out["dele"] = r.line()
out["noop"] = r.line()
out["quit"] = r.line()
out["closed"] = r.line()
"#,
    ));
    let sizes = sizes(&out);
    let total: u64 = sizes.iter().sum();
    assert_eq!(out["user_split"], "+OK send PASS");
    assert!(
        out["pass"]
            .as_str()
            .unwrap_or("")
            .starts_with("+OK logged in"),
        "{out}"
    );
    assert_eq!(out["stat"], format!("+OK 3 {total}"));
    assert_eq!(out["list_1"], format!("+OK 1 {}", sizes[0]));
    assert_eq!(out["retr"], format!("+OK {} octets", sizes[2]));
    assert_eq!(out["retr_equal"], true, "{out}");
    assert!(
        out["uidl_1"].as_str().unwrap_or("").starts_with("+OK 1 "),
        "{out}"
    );
    assert_eq!(out["dele"], "+OK message 2 deleted");
    assert_eq!(out["noop"], "+OK");
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (2 messages left)")
    );
    assert_eq!(out["closed"], Value::Null);
}

#[tokio::test]
async fn commands_pipelined_after_stls_are_discarded() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
sock = socket.create_connection(("127.0.0.1", POP3_PORT), timeout=10)
f = sock.makefile("rb")
f.readline()
# RFC 2595 section 4 / CVE-2011-0411: nothing sent in clear may be read after the handshake.
sock.sendall(b"STLS\r\nUSER injected@example.test\r\nCAPA\r\n")
out["stls"] = s(f.readline().rstrip(b"\r\n"))
tls = ctx.wrap_socket(sock)
tls.settimeout(1.5)
try:
    out["unsolicited"] = s(tls.recv(4096))
except socket.timeout:
    out["unsolicited"] = None
tls.settimeout(10)
tls.sendall(b"PASS " + PW.encode() + b"\r\n")
tf = tls.makefile("rb")
out["pass_without_user"] = s(tf.readline().rstrip(b"\r\n"))
"#,
    ));
    assert_eq!(out["stls"], "+OK Begin TLS negotiation");
    assert_eq!(
        out["unsolicited"],
        Value::Null,
        "replies to plaintext commands after TLS: {out}"
    );
    assert_status(&out, "pass_without_user", "-ERR");
}

#[tokio::test]
async fn auth_plain_accepts_its_own_authzid_and_refuses_another() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
def b64(text):
    return base64.b64encode(text.encode()).decode()
p = pops()
out["own"] = short(p, "AUTH PLAIN " + b64(ALICE + "\0" + ALICE + "\0" + PW))
p.quit()
p = pops()
out["foreign"] = short(p, "AUTH PLAIN " + b64("bob@example.test\0" + ALICE + "\0" + PW))
out["then"] = short(p, "STAT")
p.quit()
"#,
    ));
    assert!(
        out["own"]
            .as_str()
            .unwrap_or("")
            .starts_with("+OK logged in"),
        "{out}"
    );
    assert_status(&out, "foreign", "-ERR");
    assert_status(&out, "then", "-ERR");
}

#[tokio::test]
async fn sizes_count_crlf_for_a_message_stored_with_bare_lf() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
import re
imaplib.MapCRLF = re.compile(br"(?!)")  # send the literal as it is: bare LF line ends
append(b"From: bob@example.test\nSubject: bare lf\n\nline one\nline two\n")
p = login()
out["stat"] = short(p, "STAT")
out["list"] = short(p, "LIST 1")
resp, lines, octets = p.retr(1)
out["retr"] = s(resp)
out["octets"] = octets
out["lines"] = s(lines)
p.quit()
"#,
    ));
    assert_eq!(
        strings(&out["lines"]),
        [
            "From: bob@example.test",
            "Subject: bare lf",
            "",
            "line one",
            "line two"
        ]
    );
    // RFC 1939 sections 5 and 11: sizes are of the message as sent, with CRLF line ends.
    let octets = out["octets"].as_u64().expect("octets");
    assert_eq!(octets, 64, "five lines, each with CRLF");
    assert_eq!(out["list"], format!("+OK 1 {octets}"), "{out}");
    assert_eq!(out["stat"], format!("+OK 1 {octets}"), "{out}");
    assert_eq!(out["retr"], format!("+OK {octets} octets"), "{out}");
}

#[tokio::test]
async fn sizes_count_the_line_end_added_to_a_message_without_one() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(b"From: bob@example.test\r\nSubject: open end\r\n\r\nno final line end")
p = login()
out["list"] = short(p, "LIST 1")
resp, lines, octets = p.retr(1)
out["retr"] = s(resp)
out["octets"] = octets
out["lines"] = s(lines)
p.quit()
"#,
    ));
    assert_eq!(
        strings(&out["lines"]),
        [
            "From: bob@example.test",
            "Subject: open end",
            "",
            "no final line end"
        ]
    );
    let octets = out["octets"].as_u64().expect("octets");
    assert_eq!(out["list"], format!("+OK 1 {octets}"), "{out}");
    assert_eq!(out["retr"], format!("+OK {octets} octets"), "{out}");
}

#[tokio::test]
async fn deleting_a_message_expunged_over_imap_still_commits_the_others() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
append(*MESSAGES)
p = login()
m = imap()
m.select("INBOX")
m.store("2", "+FLAGS", "\\Deleted")
m.expunge()
m.logout()
out["dele_1"] = short(p, "DELE 1")
out["dele_2"] = short(p, "DELE 2")
out["quit"] = call(p.quit)
p, out["attempts"] = login_when_free()
out["stat"] = short(p, "STAT")
p.quit()
out["exists"] = exists()
"#,
    ));
    let sizes = sizes(&out);
    assert_eq!(out["dele_1"], "+OK message 1 deleted");
    assert_eq!(out["dele_2"], "+OK message 2 deleted");
    // The message the client deleted is gone either way: the QUIT succeeded.
    assert_eq!(
        out["quit"],
        format!("+OK {HOSTNAME} POP3 server signing off (1 message left)")
    );
    assert_eq!(out["stat"], format!("+OK 1 {}", sizes[2]), "{out}");
    assert_eq!(out["exists"], 1);
}

#[tokio::test]
async fn the_lock_is_kept_while_its_holder_is_idle_longer_than_the_lease() {
    let (_db, access) = start_with(&[("MAILCLUSTER_ACCESS__POP3_LOCK_SECS", "2")]).await;
    let out = access.python(&script(
        r#"
first = login()
time.sleep(4)  # idle, well within the session's inactivity timeout
second = pops()
second.user(ALICE)
out["second"] = call(second.pass_, PW)
out["first_noop"] = short(first, "NOOP")
"#,
    ));
    assert_eq!(
        out["first_noop"], "+OK",
        "the first session is alive: {out}"
    );
    assert_status(&out, "second", "-ERR [IN-USE]");
}

#[tokio::test]
async fn an_idle_client_before_login_is_disconnected_without_a_reply() {
    let (_db, access) = start_with(&[("MAILCLUSTER_ACCESS__LOGIN_TIMEOUT_SECS", "2")]).await;
    let out = access.python(&script(
        r#"
r = Raw()
r.line()
started = time.monotonic()
out["reply"] = r.line()
out["seconds"] = time.monotonic() - started
"#,
    ));
    // RFC 1939 section 3: on the autologout timer the server closes without a response.
    assert_eq!(out["reply"], Value::Null, "{out}");
    assert!(out["seconds"].as_f64().unwrap_or(99.0) < 8.0, "{out}");
}

#[tokio::test]
async fn shutdown_during_a_session_is_sys_temp_and_deletes_nothing() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let prefix = mc_testkit::unique_prefix("pop3");
    let mut access = AccessProcess::start(&db, &prefix, &[]);
    let mut client = spawn_python(
        &access,
        r#"
append(*MESSAGES)
r = Raw(POP3S_PORT, tls=True)
r.line()
r.cmd("USER " + ALICE)
r.cmd("PASS " + PW)
print(r.cmd("DELE 1"), flush=True)
r.sock.settimeout(20)
out["after_shutdown"] = r.line()
out["then"] = r.line()
"#,
    );
    let dele = next_line(&mut client);
    assert_eq!(dele.trim_end(), "+OK message 1 deleted");
    let pid = access.child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(
        term.is_ok_and(|s| s.success()),
        "SIGTERM to the access service"
    );
    let status = access.child.wait().expect("access exits");
    let output = client.wait_with_output().expect("client ends");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let out: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "client printed no JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        status.success(),
        "access exit status after SIGTERM: {status:?}"
    );
    assert_status(&out, "after_shutdown", "-ERR [SYS/TEMP]");
    assert_eq!(out["then"], Value::Null, "{out}");
    let restarted = AccessProcess::start(&db, &prefix, &[]);
    let out = restarted.python(&script(
        r#"
p = login()
out["stat"] = short(p, "STAT")
p.quit()
"#,
    ));
    let total: u64 = sizes(&out).iter().sum();
    assert_eq!(
        out["stat"],
        format!("+OK 3 {total}"),
        "no deletion without QUIT"
    );
}

/// The value of the metric line that starts with `series` (name and labels), if any.
fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

const SENT: &str = "mailcluster_access_sent_bytes_total{protocol=\"pop3\"}";

/// Waits until the POP3 sessions gauge is back to zero (sessions are counted out after the
/// client sees the connection close); returns the metrics then.
fn metrics_when_idle(access: &AccessProcess) -> String {
    let started = std::time::Instant::now();
    loop {
        let metrics = access.metrics();
        let open: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("mailcluster_access_sessions{") && l.contains("pop3"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if open == 0.0 || started.elapsed() > std::time::Duration::from_secs(3) {
            return metrics;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test]
async fn sent_bytes_metric_counts_exactly_what_clients_received() {
    let (_db, access) = start().await;
    access.python(&script("append(M1, M2)"));
    let sessions = [
        (
            "one command at a time",
            r#"
r = Raw(POP3S_PORT, tls=True)
r.received = 0
def read_line():
    line = r.file.readline()
    r.received += len(line)
    return line
def read_multi():
    while read_line() not in (b".\r\n", b""):
        pass
read_line()
for command, multi_line in [("USER " + ALICE, False), ("PASS " + PW, False), ("STAT", False),
                            ("RETR 1", True), ("LIST", True), ("TOP 2 1", True), ("QUIT", False)]:
    r.send(command.encode() + b"\r\n")
    read_line()
    if multi_line:
        read_multi()
while read_line():
    pass
out["received"] = r.received
"#,
        ),
        (
            "pipelined",
            r#"
r = Raw(POP3S_PORT, tls=True)
received = 0
r.send(b"USER " + ALICE.encode() + b"\r\nPASS " + PW.encode() + b"\r\n")
time.sleep(0.5)
r.send(b"STAT\r\nRETR 1\r\nLIST\r\nRETR 2\r\nNOOP\r\nQUIT\r\n")
while True:
    line = r.file.readline()
    if not line:
        break
    received += len(line)
out["received"] = received
"#,
        ),
        (
            "STLS on the plain port",
            r#"
r = Raw(POP3_PORT)
received = len(r.file.readline())
r.send(b"STLS\r\n")
received += len(r.file.readline())
r.sock = ctx.wrap_socket(r.sock)
r.file = r.sock.makefile("rb")
r.send(b"NOOP\r\nQUIT\r\n")
while True:
    line = r.file.readline()
    if not line:
        break
    received += len(line)
out["received"] = received
"#,
        ),
    ];
    let mut report = Vec::new();
    for (name, body) in sessions {
        let before = metric(&metrics_when_idle(&access), SENT).unwrap_or(0.0);
        let out = access.python(&script(body));
        let after = metric(&metrics_when_idle(&access), SENT).expect("sent bytes metric");
        let received = out["received"].as_f64().expect("received");
        report.push((name, received, after - before));
    }
    let wrong: Vec<_> = report
        .iter()
        .filter(|(_, received, counted)| received != counted)
        .collect();
    assert!(
        wrong.is_empty(),
        "(session, bytes the client received, bytes the metric counted): {report:?}"
    );
    let metrics = metrics_when_idle(&access);
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("mailcluster_access_sessions{") && l.contains("pop3"))
    {
        assert!(
            line.ends_with(" 0"),
            "a POP3 session still counted open: {line}"
        );
    }
}

async fn start_with(env: &[(&str, &str)]) -> (TestDatabase, AccessProcess) {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let access = AccessProcess::start(&db, &mc_testkit::unique_prefix("pop3"), env);
    (db, access)
}

#[tokio::test]
async fn the_configured_auth_failure_limit_closes_a_pop3_session() {
    // docs/DECISIONS.md: "Failed logins (IMAP and POP3) ... the session closes after
    // `max_auth_failures`".
    let (_db, access) = start_with(&[("MAILCLUSTER_ACCESS__MAX_AUTH_FAILURES", "1")]).await;
    let out = access.python(&script(
        r#"
r = Raw(POP3S_PORT, tls=True)
r.line()
r.cmd("USER " + ALICE)
out["failure"] = r.cmd("PASS wrong")
r.sock.settimeout(3)
out["after"] = r.line()
"#,
    ));
    assert_status(&out, "failure", "-ERR [AUTH]");
    assert_eq!(
        out["after"],
        Value::Null,
        "still open after max_auth_failures=1: {out}"
    );
}

#[tokio::test]
async fn the_configured_bad_command_limit_closes_a_pop3_session() {
    let (_db, access) = start_with(&[("MAILCLUSTER_ACCESS__MAX_BAD_COMMANDS", "2")]).await;
    let out = access.python(&script(
        r#"
r = Raw()
r.line()
out["replies"] = [r.cmd("XYZZY"), r.cmd("XYZZY")]
r.sock.settimeout(3)
out["after"] = r.line()
"#,
    ));
    let replies = strings(&out["replies"]);
    assert!(replies.iter().all(|r| r.starts_with("-ERR")), "{replies:?}");
    assert_eq!(
        out["after"],
        Value::Null,
        "still open after max_bad_commands=2: {out}"
    );
}

/// One fetchmail run in `home` (its rc file, id file and delivered messages live there).
struct FetchmailRun {
    output: Output,
    /// The messages the MDA received in this run, CRLF turned into LF.
    delivered: Vec<String>,
}

impl FetchmailRun {
    fn describe(&self) -> String {
        format!(
            "status {:?}\nstdout: {}\nstderr: {}",
            self.output.status,
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }

    fn subjects(&self) -> Vec<String> {
        let mut subjects: Vec<String> = self
            .delivered
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find(|l| l.starts_with("Subject: "))
                    .map(String::from)
            })
            .collect();
        subjects.sort();
        subjects
    }
}

/// Runs fetchmail once against `port`, implicit TLS (`ssl`) or STLS, keeping the messages
/// (`keep`, with client-side UIDL tracking) or deleting them.
fn fetchmail(
    access: &AccessProcess,
    home: &Path,
    port: u16,
    ssl: bool,
    keep: bool,
) -> FetchmailRun {
    let mail = home.join("mail");
    std::fs::create_dir_all(&mail).expect("mail dir");
    let before: Vec<PathBuf> = files(&mail);
    let mda = home.join("deliver.sh");
    std::fs::write(
        &mda,
        format!(
            "#!/bin/sh\nexec cat > \"$(mktemp {}/msg.XXXXXXXX)\"\n",
            mail.display()
        ),
    )
    .expect("write the MDA");
    chmod(&mda, 0o755);
    let rc = home.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no syslog\nset no bouncemail\n\
             poll 127.0.0.1 service {port} protocol pop3 {uidl} timeout 30\n\
             \tuser \"alice@example.test\" there with password \"{PASSWORD}\"\n\
             \t{ssl} sslcertfile \"{cert}\" sslcertck sslcommonname \"localhost\"\n\
             \t{keep} mda \"{mda}\"\n",
            ssl = if ssl { "ssl" } else { "sslproto \"tls1.2+\"" },
            cert = access.cert.display(),
            keep = if keep { "keep" } else { "nokeep" },
            uidl = if keep { "uidl" } else { "" },
            mda = mda.display(),
        ),
    )
    .expect("write the rc file");
    chmod(&rc, 0o600);
    let output = Command::new("/usr/bin/fetchmail")
        .arg("-f")
        .arg(&rc)
        .arg("--idfile")
        .arg(home.join("fetchids"))
        // Its own lock file: as root fetchmail would share /var/run/fetchmail.pid with every
        // other run.
        .arg("--pidfile")
        .arg(home.join("fetchmail.pid"))
        .arg("--nodetach")
        .arg("-v")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("FETCHMAILHOME", home)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .expect("run fetchmail");
    let delivered = files(&mail)
        .into_iter()
        .filter(|path| !before.contains(path))
        .map(|path| {
            String::from_utf8_lossy(&std::fs::read(&path).expect("delivered message"))
                .replace("\r\n", "\n")
        })
        .collect();
    FetchmailRun { output, delivered }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("dir entry").path())
        .collect()
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

const APPEND_THREE: &str = "append(*MESSAGES)";

const STAT_AND_EXISTS: &str = r#"
p = login()
out["stat"] = short(p, "STAT")
p.quit()
out["exists"] = exists()
"#;

/// The dot lines of M2 and the end of M3 arrive intact.
fn assert_fetched_intact(run: &FetchmailRun) {
    let dots = run
        .delivered
        .iter()
        .find(|m| m.contains("Subject: dots"))
        .unwrap_or_else(|| panic!("no dots message\n{}", run.describe()));
    assert!(
        dots.contains("\n\n.leading dot\n..two dots\n.\nafter the lone dot\n"),
        "{dots}"
    );
    let big = run
        .delivered
        .iter()
        .find(|m| m.contains("Subject: big"))
        .unwrap_or_else(|| panic!("no big message\n{}", run.describe()));
    assert!(
        big.contains("\n.05000 ") && big.contains(&format!("\n05999 {}\n", "x".repeat(50))),
        "big message truncated or mangled ({} bytes)",
        big.len()
    );
}

#[tokio::test]
async fn fetchmail_over_implicit_tls_retrieves_and_deletes_everything() {
    let (_db, access) = start().await;
    access.python(&script(APPEND_THREE));
    let home = tempfile::tempdir().expect("tempdir");
    let run = fetchmail(&access, home.path(), access.pop3s_port, true, false);
    assert_eq!(run.output.status.code(), Some(0), "{}", run.describe());
    assert_eq!(
        run.subjects(),
        ["Subject: big", "Subject: dots", "Subject: first"],
        "{}",
        run.describe()
    );
    assert_fetched_intact(&run);
    let out = access.python(&script(STAT_AND_EXISTS));
    assert_eq!(
        out["stat"], "+OK 0 0",
        "fetchmail --nokeep must leave nothing"
    );
    assert_eq!(out["exists"], 0);
}

#[tokio::test]
async fn fetchmail_over_stls_retrieves_and_deletes_everything() {
    let (_db, access) = start().await;
    access.python(&script(APPEND_THREE));
    let home = tempfile::tempdir().expect("tempdir");
    let run = fetchmail(&access, home.path(), access.pop3_port, false, false);
    assert_eq!(run.output.status.code(), Some(0), "{}", run.describe());
    assert_eq!(
        run.subjects(),
        ["Subject: big", "Subject: dots", "Subject: first"],
        "{}",
        run.describe()
    );
    let stdout = String::from_utf8_lossy(&run.output.stdout).to_string();
    assert!(
        stdout.contains("STLS"),
        "fetchmail did not use STLS: {stdout}"
    );
    let out = access.python(&script(STAT_AND_EXISTS));
    assert_eq!(out["stat"], "+OK 0 0");
    assert_eq!(out["exists"], 0);
}

#[tokio::test]
async fn fetchmail_keep_with_uidl_keeps_messages_and_fetches_only_new_ones() {
    let (_db, access) = start().await;
    access.python(&script(APPEND_THREE));
    let home = tempfile::tempdir().expect("tempdir");
    let first = fetchmail(&access, home.path(), access.pop3s_port, true, true);
    assert_eq!(first.output.status.code(), Some(0), "{}", first.describe());
    assert_eq!(
        first.subjects(),
        ["Subject: big", "Subject: dots", "Subject: first"],
        "{}",
        first.describe()
    );
    assert_fetched_intact(&first);
    let out = access.python(&script(STAT_AND_EXISTS));
    let total: u64 = sizes(&out).iter().sum();
    assert_eq!(out["stat"], format!("+OK 3 {total}"), "keep must keep");
    let second = fetchmail(&access, home.path(), access.pop3s_port, true, true);
    // fetchmail exits 1: no new mail.
    assert_eq!(
        second.output.status.code(),
        Some(1),
        "{}",
        second.describe()
    );
    assert!(second.delivered.is_empty(), "{}", second.describe());
    access.python(&script("append(M4)"));
    let third = fetchmail(&access, home.path(), access.pop3s_port, true, true);
    assert_eq!(third.output.status.code(), Some(0), "{}", third.describe());
    assert_eq!(
        third.subjects(),
        ["Subject: fourth"],
        "{}",
        third.describe()
    );
    let out = access.python(&script(STAT_AND_EXISTS));
    assert!(
        out["stat"].as_str().unwrap_or("").starts_with("+OK 4 "),
        "{out}"
    );
    assert_eq!(out["exists"], 4);
}
