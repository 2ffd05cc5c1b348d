//! Change propagation: an IDLE session wakes up when mail is delivered (delivery worker →
//! Redis notice → access), and a change made on one access replica reaches an IDLE session on
//! another replica within a second. With the notices lost, the periodic look in PostgreSQL
//! still finds the change.

use mc_tests::TestDatabase;
use mc_tests::access::AccessProcess;
use mc_tests::delivery::WorkerProcess;
use mc_tests::smtp::{IngressProcess, RawClient, seed_directory};

/// A raw IMAPS client in Python with helpers; `ports` names the replica's port variable.
const CLIENT: &str = r#"
import json, os, socket, ssl, sys, time
def context(ca):
    c = ssl.create_default_context(cafile=ca)
    c.check_hostname = False
    return c
class C:
    def __init__(self, port, ca=None):
        ctx = context(ca or os.environ["CA_FILE"])
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        self.f = self.s.makefile("rb")
        self.n = 0
        self.line()
    def line(self):
        l = self.f.readline()
        if not l: raise Exception("closed")
        return l.decode().rstrip("\r\n")
    def cmd(self, text):
        self.n += 1
        tag = "t%d" % self.n
        self.s.sendall(("%s %s\r\n" % (tag, text)).encode())
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag + " "):
                return lines
    def login(self):
        r = self.cmd('LOGIN alice@example.test "%s"' % os.environ["PASSWORD"])
        assert r[-1].split()[1] == "OK", r
    def wait_for(self, word, limit):
        start = time.time()
        self.s.settimeout(limit)
        while True:
            l = self.line()
            if word in l:
                return l, time.time() - start
"#;

fn send_mail(port: u16) {
    let (mut client, _) = RawClient::connect(port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(client.cmd("DATA").code, 354);
    assert_eq!(
        client.cmd("Subject: wake up\r\n\r\nnew mail\r\n.").code,
        250
    );
}

async fn idle_until_delivery(poll_secs: &str, share_redis: bool) -> serde_json::Value {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let redis_prefix = mc_testkit::unique_prefix("cluster");
    let ingress = IngressProcess::start(&db, &[("MAILCLUSTER_REDIS__KEY_PREFIX", &redis_prefix)]);
    let worker_prefix = if share_redis {
        redis_prefix.clone()
    } else {
        mc_testkit::unique_prefix("elsewhere")
    };
    let _worker = WorkerProcess::start(
        &db,
        &ingress.s3_prefix,
        &[("MAILCLUSTER_REDIS__KEY_PREFIX", &worker_prefix)],
    );
    let access = AccessProcess::start_shared(
        &db,
        &ingress.s3_prefix,
        &redis_prefix,
        &[("MAILCLUSTER_ACCESS__IDLE_POLL_SECS", poll_secs)],
    );
    let mut python = access.python_spawn(
        &format!(
            "{CLIENT}
c = C(int(os.environ['IMAPS_PORT']))
c.login()
c.cmd('SELECT INBOX')
c.s.sendall(b'i IDLE\\r\\n')
assert c.line().startswith('+'), 'no continuation'
print('IDLING')
line, waited = c.wait_for('EXISTS', 20)
c.s.sendall(b'DONE\\r\\n')
done = c.line()
fetched = c.cmd('FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(json.dumps({{'line': line, 'waited': waited, 'done': done, 'fetched': fetched}}))
"
        ),
        &[],
    );
    assert_eq!(python.line(), "IDLING");
    send_mail(ingress.mx_port);
    let out = python.finish();
    if out["done"] != "i OK IDLE terminated" {
        eprintln!("ACCESS LOG:\n{}", access.log_text());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_wakes_up_when_mail_is_delivered() {
    // The poll interval is an hour: only the delivery worker's notice can wake the session.
    let out = idle_until_delivery("3600", true).await;
    assert_eq!(out["line"], "* 1 EXISTS", "{out}");
    assert!(out["waited"].as_f64().unwrap_or(99.0) < 10.0, "{out}");
    assert_eq!(out["done"], "i OK IDLE terminated", "{out}");
    assert!(
        out["fetched"].to_string().contains("Subject: wake up"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_finds_new_mail_by_polling_when_notices_are_lost() {
    // The worker publishes under another Redis prefix: no notice reaches the access service.
    let out = idle_until_delivery("1", false).await;
    assert_eq!(out["line"], "* 1 EXISTS", "{out}");
    assert_eq!(out["done"], "i OK IDLE terminated", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_on_one_replica_reaches_idle_on_another_within_a_second() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let s3 = mc_testkit::unique_prefix("replicas");
    let redis = mc_testkit::unique_prefix("replicas");
    // Polling is off (an hour): only Redis notices carry the change across.
    let poll = [("MAILCLUSTER_ACCESS__IDLE_POLL_SECS", "3600")];
    let one = AccessProcess::start_shared(&db, &s3, &redis, &poll);
    let two = AccessProcess::start_shared(&db, &s3, &redis, &poll);
    let out = one.python_with(
        &format!(
            "{CLIENT}
a = C(int(os.environ['IMAPS_PORT']))
b = C(int(os.environ['OTHER_IMAPS_PORT']), os.environ['OTHER_CA_FILE'])
a.login(); b.login()
for i in range(3):
    a.s.sendall(b'x APPEND INBOX {{20}}\\r\\n')
    assert a.line().startswith('+')
    a.s.sendall(b'Subject: m\\r\\n\\r\\nbody\\r\\n\\r\\n')
    assert 'APPENDUID' in a.line()
a.cmd('SELECT INBOX')
b.cmd('SELECT INBOX')
b.s.sendall(b'i IDLE\\r\\n')
assert b.line().startswith('+')
time.sleep(0.3)
stored = a.cmd('STORE 2 +FLAGS (\\\\Flagged)')
flag_line, flag_wait = b.wait_for('FETCH', 5)
a.cmd('STORE 1 +FLAGS (\\\\Deleted)')
t0 = time.time()
expunged = a.cmd('EXPUNGE')
gone_line, gone_wait = b.wait_for('EXPUNGE', 5)
b.s.sendall(b'DONE\\r\\n')
b.line()
after = b.cmd('FETCH 1:* (UID FLAGS)')
print(json.dumps({{'stored': stored, 'flag_line': flag_line, 'flag_wait': flag_wait,
    'expunged': expunged, 'gone_line': gone_line, 'gone_wait': gone_wait, 'after': after}}))
"
        ),
        &[
            ("OTHER_IMAPS_PORT", two.imaps_port.to_string()),
            ("OTHER_CA_FILE", two.cert.display().to_string()),
        ],
    );
    assert!(
        out["flag_line"]
            .as_str()
            .unwrap_or("")
            .starts_with("* 2 FETCH (UID 2 FLAGS (\\Flagged)"),
        "{out}"
    );
    assert!(out["flag_wait"].as_f64().unwrap_or(9.0) < 1.0, "{out}");
    assert_eq!(out["gone_line"], "* 1 EXPUNGE", "{out}");
    assert!(out["gone_wait"].as_f64().unwrap_or(9.0) < 1.0, "{out}");
    let after = out["after"].to_string();
    assert!(
        after.contains("* 1 FETCH (UID 2 FLAGS (\\\\Flagged))")
            && after.contains("* 2 FETCH (UID 3 FLAGS ())"),
        "{after}"
    );
}
