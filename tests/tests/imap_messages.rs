//! IMAP message commands end to end, against the real access service, PostgreSQL, Redis and the
//! object store: APPEND, FETCH, STORE, SEARCH, SORT, COPY/MOVE, EXPUNGE, CONDSTORE, what a second
//! session on the same mailbox sees, and malformed input. Python drives the server, through
//! `imaplib` where it shows enough and through a raw TLS socket where the exact responses
//! (untagged data, response codes, their order) are what is checked.

use mc_tests::TestDatabase;
use mc_tests::access::AccessProcess;
use mc_tests::smtp::seed_directory;
use serde_json::Value;

async fn start_with(extra_env: &[(&str, &str)]) -> (TestDatabase, AccessProcess) {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let access = AccessProcess::start(&db, &mc_testkit::unique_prefix("imapmsg"), extra_env);
    (db, access)
}

async fn start() -> (TestDatabase, AccessProcess) {
    start_with(&[]).await
}

/// A multipart/mixed message: a text part and a base64 attachment. Each part's body ends with
/// an empty line, so its line count is unambiguous.
const MULTI: &str = "From: Alice Example <alice@example.test>\r\n\
To: Bob Builder <bob@example.test>\r\n\
Cc: carol@example.test\r\n\
Subject: Quarterly report\r\n\
Date: Mon, 15 Jan 2024 10:00:00 +0000\r\n\
Message-ID: <report-1@example.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
--XYZ\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 7bit\r\n\
\r\n\
Please find the quarterly figures attached.\r\n\
Regards, Alice\r\n\
\r\n\
--XYZ\r\n\
Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK\r\n\
\r\n\
--XYZ--\r\n";

/// The header of [`MULTI`], with the blank line that ends it.
const MULTI_HEADER: &str = "From: Alice Example <alice@example.test>\r\n\
To: Bob Builder <bob@example.test>\r\n\
Cc: carol@example.test\r\n\
Subject: Quarterly report\r\n\
Date: Mon, 15 Jan 2024 10:00:00 +0000\r\n\
Message-ID: <report-1@example.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\
\r\n";

/// Part 1 of [`MULTI`] (its body: the CRLF before the delimiter belongs to the delimiter).
const MULTI_PART1: &str = "Please find the quarterly figures attached.\r\nRegards, Alice\r\n";
const MULTI_PART2_MIME: &str = "Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n";
const MULTI_PART2: &str = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK\r\n";

/// A plain message without MIME headers (text/plain; charset=us-ascii by default).
const SIMPLE: &str = "From: Bob Builder <bob@example.test>\r\n\
To: alice@example.test\r\n\
Subject: Lunch on Friday?\r\n\
Date: Tue, 20 Feb 2024 12:30:00 +0100\r\n\
Message-ID: <lunch-2@example.test>\r\n\
\r\n\
Shall we meet at the usual place at noon?\r\n\
Bob\r\n";

const PRELUDE: &str = r#"
import imaplib, json, os, re, socket, ssl, time, datetime
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.check_hostname = False
PW = os.environ["PASSWORD"]
out = {}
STATUS = re.compile(r"^(\*|[^ ]+) (OK|NO|BAD|BYE|PREAUTH)( \[[^\]]*\])?(?: .*)?$", re.S)

def norm(line, tag):
    m = STATUS.match(line)
    if m and m.group(1) in ("*", tag):
        return ("* " if m.group(1) == "*" else "") + m.group(2) + (m.group(3) or "")
    return line

class Raw:
    """A raw IMAPS connection: responses come back exactly as sent (literals inlined), with
    the human-readable text of status responses dropped and the tag of the final one too."""
    def __init__(self, user="alice@example.test"):
        sock = socket.create_connection(("127.0.0.1", int(os.environ["IMAPS_PORT"])), timeout=20)
        self.s = ctx.wrap_socket(sock)
        self.buf = b""
        self.n = 0
        self.greeting = norm(self.response(), "*")
        if user:
            got = self.cmd('LOGIN "%s" "%s"' % (user, PW))
            assert got[-1].startswith("OK"), got
    def fill(self):
        data = self.s.recv(1 << 16)
        if not data:
            raise EOFError("connection closed; buffered: %r" % self.buf)
        self.buf += data
    def response(self):
        got = b""
        while True:
            while b"\r\n" not in self.buf:
                self.fill()
            i = self.buf.index(b"\r\n") + 2
            line, self.buf = self.buf[:i], self.buf[i:]
            got += line
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if not m:
                return got[:-2].decode("latin-1")
            n = int(m.group(1))
            while len(self.buf) < n:
                self.fill()
            got += self.buf[:n]
            self.buf = self.buf[n:]
    def send(self, data):
        self.s.sendall(data)
    def tag(self):
        self.n += 1
        return "A%d" % self.n
    def until(self, tag):
        got = []
        while True:
            r = self.response()
            if r.startswith(tag + " "):
                got.append(norm(r, tag))
                return got
            got.append(norm(r, "*"))
    def cmd(self, text):
        tag = self.tag()
        self.send(("%s %s\r\n" % (tag, text)).encode())
        return self.until(tag)
    def literal(self, head, data, tail=""):
        """`tag head {n}`, then the data once the server asked for it."""
        tag = self.tag()
        self.send(("%s %s {%d}\r\n" % (tag, head, len(data))).encode())
        r = self.response()
        if not r.startswith("+"):
            return [norm(r, tag)]
        self.send(data + tail.encode() + b"\r\n")
        return self.until(tag)
    def raw(self, data, tag="*"):
        """Sends bytes as they are and returns the next response."""
        self.send(data)
        return norm(self.response(), tag)
    def append(self, mailbox, data, flags=None, date=None):
        head = "APPEND " + mailbox
        if flags is not None:
            head += " (%s)" % flags
        if date is not None:
            head += ' "%s"' % date
        return self.literal(head, data)

def msg(subject, sender="Carol Danvers <carol@example.test>", date="Fri, 01 Mar 2024 09:00:00 +0000", body="Hello.\r\n", extra=""):
    return ("From: %s\r\nTo: alice@example.test\r\nSubject: %s\r\nDate: %s\r\n%sMessage-ID: <%s@example.test>\r\n\r\n%s" % (sender, subject, date, extra, re.sub(r"\W", "", subject).lower(), body)).encode()

def imaps():
    return imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["IMAPS_PORT"]), ssl_context=ctx)

def s(x):
    if isinstance(x, bytes): return x.decode("latin-1")
    if isinstance(x, (list, tuple)): return [s(i) for i in x]
    return x

def instant(text):
    """Seconds since the epoch of an IMAP date-time ("20-Feb-2024 12:31:00 +0100")."""
    return datetime.datetime.strptime(text.strip('"'), "%d-%b-%Y %H:%M:%S %z").timestamp()
"#;

/// The script with the prelude, the sample messages as `MULTI` and `SIMPLE` (bytes), and the
/// final `print(json.dumps(out))`.
fn script(body: &str) -> String {
    let multi = serde_json::to_string(MULTI).expect("json");
    let simple = serde_json::to_string(SIMPLE).expect("json");
    format!(
        "{PRELUDE}\nMULTI = {multi}.encode()\nSIMPLE = {simple}.encode()\n{body}\nprint(json.dumps(out))"
    )
}

/// `out[key]` as a list of response lines.
fn lines(out: &Value, key: &str) -> Vec<String> {
    serde_json::from_value(out[key].clone()).unwrap_or_else(|e| panic!("{key}: {e}: {out}"))
}

/// `{n}\r\ntext`: a string as the server sends it in a literal.
fn lit(text: &str) -> String {
    format!("{{{}}}\r\n{text}", text.len())
}

/// The number in `[NAME n]` (or after `NAME ` in a STATUS response) in one of `lines`.
fn number_after(lines: &[String], name: &str) -> u64 {
    lines
        .iter()
        .find_map(|line| {
            let rest = &line[line.find(&format!("{name} "))? + name.len() + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
}

/// The MODSEQ values in FETCH responses, by sequence number.
fn modseqs(lines: &[String]) -> Vec<(u32, u64)> {
    lines
        .iter()
        .filter_map(|line| {
            let seq = line.strip_prefix("* ")?.split(' ').next()?.parse().ok()?;
            let rest = &line[line.find("MODSEQ (")? + 8..];
            let value = rest[..rest.find(')')?].parse().ok()?;
            Some((seq, value))
        })
        .collect()
}

/// Appends `MESSAGES` (a Python list of `(bytes, flags, date)`) to INBOX after one message that
/// is appended and expunged first, so UIDs start at 2 and differ from sequence numbers.
const SEED_SHIFTED: &str = r#"
def seed_shifted(r, messages, mailbox="INBOX"):
    r.append(mailbox, msg("Placeholder"), "\\Deleted")
    r.cmd("SELECT " + mailbox)
    r.cmd("EXPUNGE")
    r.cmd("UNSELECT")
    for data, flags, date in messages:
        got = r.append(mailbox, data, flags, date)
        assert got[-1].startswith("OK [APPENDUID"), got
"#;

#[tokio::test]
async fn append_with_flags_and_date_gives_appenduid_and_select_reports_the_mailbox() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
out["seen"] = r.append("INBOX", SIMPLE, "\\Seen \\Flagged", "20-Feb-2024 12:31:00 +0100")
out["plain"] = r.append("INBOX", MULTI, "", "15-Jan-2024 10:05:00 +0000")
out["missing"] = r.append("Nope", SIMPLE, "\\Seen")
out["status"] = r.cmd("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
out["select"] = r.cmd("SELECT INBOX")
out["modseqs"] = r.cmd("FETCH 1:* (MODSEQ)")
out["dates"] = r.cmd("FETCH 1:2 (INTERNALDATE)")
r.cmd("LOGOUT")
# imaplib as the client: APPEND with Time2Internaldate, then the message as imaplib sees it.
m = imaps()
m.login("alice@example.test", PW)
when = imaplib.Time2Internaldate(datetime.datetime(2024, 4, 1, 8, 0, 0, tzinfo=datetime.timezone.utc))
out["imaplib_append"] = s(m.append("Drafts", "(\\Draft)", when, SIMPLE))
out["imaplib_select"] = s(m.select("Drafts"))
out["imaplib_uidvalidity"] = s(m.response("UIDVALIDITY"))
out["imaplib_fetch"] = s(m.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE)"))
out["imaplib_missing"] = s(m.append("Archive/2024", None, None, SIMPLE))
m.logout()
"#,
    ));
    let select = lines(&out, "select");
    let validity = number_after(&select, "UIDVALIDITY");
    assert_eq!(
        lines(&out, "seen"),
        [format!("OK [APPENDUID {validity} 1]")],
        "{out}"
    );
    assert_eq!(
        lines(&out, "plain"),
        [format!("OK [APPENDUID {validity} 2]")]
    );
    assert_eq!(lines(&out, "missing"), ["NO [TRYCREATE]"]);
    let highest = number_after(&select, "HIGHESTMODSEQ");
    assert_eq!(
        select,
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)".to_string(),
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]".into(),
            "* 2 EXISTS".into(),
            "* 0 RECENT".into(),
            "* OK [UNSEEN 2]".into(),
            format!("* OK [UIDVALIDITY {validity}]"),
            "* OK [UIDNEXT 3]".into(),
            format!("* OK [HIGHESTMODSEQ {highest}]"),
            "OK [READ-WRITE]".into(),
        ]
    );
    // HIGHESTMODSEQ is the highest MODSEQ of the mailbox's messages (RFC 7162 section 3.1.1).
    let modseqs = modseqs(&lines(&out, "modseqs"));
    assert_eq!(modseqs.len(), 2, "{out}");
    assert_eq!(modseqs.iter().map(|(_, m)| *m).max(), Some(highest));
    assert_eq!(
        lines(&out, "status"),
        [
            format!(
                "* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY {validity} UNSEEN 1 HIGHESTMODSEQ {highest})"
            ),
            "OK".into()
        ]
    );
    // The internal date is the one APPEND gave (the same instant; +0000 shown as given).
    let dates = lines(&out, "dates");
    assert_eq!(
        dates[1],
        "* 2 FETCH (INTERNALDATE \"15-Jan-2024 10:05:00 +0000\")"
    );
    assert!(
        dates[0] == "* 1 FETCH (INTERNALDATE \"20-Feb-2024 12:31:00 +0100\")"
            || dates[0] == "* 1 FETCH (INTERNALDATE \"20-Feb-2024 11:31:00 +0000\")",
        "{dates:?}"
    );
    let append = &out["imaplib_append"];
    assert_eq!(append[0], "OK", "{out}");
    let drafts_validity = &out["imaplib_uidvalidity"][1][0];
    assert_eq!(
        append[1][0].as_str().unwrap_or_default().split(']').next(),
        Some(format!("[APPENDUID {} 1", drafts_validity.as_str().unwrap_or("?")).as_str()),
        "{out}"
    );
    assert_eq!(out["imaplib_select"], serde_json::json!(["OK", ["1"]]));
    assert_eq!(
        out["imaplib_fetch"],
        serde_json::json!([
            "OK",
            [format!(
                "1 (FLAGS (\\Draft) INTERNALDATE \"01-Apr-2024 08:00:00 +0000\" RFC822.SIZE {})",
                SIMPLE.len()
            )]
        ])
    );
    assert_eq!(out["imaplib_missing"][0], "NO", "{out}");
    assert!(
        out["imaplib_missing"][1][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("[TRYCREATE]"),
        "{out}"
    );
}

/// Appends SIMPLE (`\Seen \Flagged`, a +0100 date) and MULTI (no flags) to INBOX and selects it.
const SEED_TWO: &str = r#"
r = Raw()
r.append("INBOX", SIMPLE, "\\Seen \\Flagged", "20-Feb-2024 12:31:00 +0100")
r.append("INBOX", MULTI, "", "15-Jan-2024 10:05:00 +0000")
assert r.cmd("SELECT INBOX")[-1] == "OK [READ-WRITE]"
"#;

#[tokio::test]
async fn fetch_returns_flags_dates_sizes_envelope_and_structure_of_appended_messages() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_TWO}{}",
        r#"
out["basic"] = r.cmd("FETCH 1:2 (UID FLAGS RFC822.SIZE)")
out["fast"] = r.cmd("FETCH 2 FAST")
date = r.cmd("FETCH 1 (INTERNALDATE)")[0]
out["same_instant"] = instant(date.split("INTERNALDATE ")[1].rstrip(")")) == instant("20-Feb-2024 12:31:00 +0100")
out["envelope"] = r.cmd("FETCH 1:2 (ENVELOPE)")
out["bodystructure"] = r.cmd("FETCH 1:2 (BODYSTRUCTURE)")
out["body"] = r.cmd("FETCH 1:2 (BODY)")
out["flags_after"] = r.cmd("FETCH 1:2 (FLAGS)")
"#
    )));
    assert_eq!(
        lines(&out, "basic"),
        [
            format!(
                "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Seen) RFC822.SIZE {})",
                SIMPLE.len()
            ),
            format!("* 2 FETCH (UID 2 FLAGS () RFC822.SIZE {})", MULTI.len()),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "fast"),
        [
            format!(
                "* 2 FETCH (FLAGS () INTERNALDATE \"15-Jan-2024 10:05:00 +0000\" RFC822.SIZE {})",
                MULTI.len()
            ),
            "OK".into()
        ]
    );
    assert_eq!(out["same_instant"], true, "{out}");
    assert_eq!(
        lines(&out, "envelope"),
        [
            "* 1 FETCH (ENVELOPE (\"Tue, 20 Feb 2024 12:30:00 +0100\" \"Lunch on Friday?\" \
             ((\"Bob Builder\" NIL \"bob\" \"example.test\")) \
             ((\"Bob Builder\" NIL \"bob\" \"example.test\")) \
             ((\"Bob Builder\" NIL \"bob\" \"example.test\")) \
             ((NIL NIL \"alice\" \"example.test\")) NIL NIL NIL \"<lunch-2@example.test>\"))",
            "* 2 FETCH (ENVELOPE (\"Mon, 15 Jan 2024 10:00:00 +0000\" \"Quarterly report\" \
             ((\"Alice Example\" NIL \"alice\" \"example.test\")) \
             ((\"Alice Example\" NIL \"alice\" \"example.test\")) \
             ((\"Alice Example\" NIL \"alice\" \"example.test\")) \
             ((\"Bob Builder\" NIL \"bob\" \"example.test\")) \
             ((NIL NIL \"carol\" \"example.test\")) NIL NIL \"<report-1@example.test>\"))",
            "OK"
        ]
    );
    // Body types are case-insensitive (RFC 3501 section 7.4.2): compared upper-cased.
    let text_part = format!(
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"7BIT\" {} 2",
        MULTI_PART1.len()
    );
    let attachment = format!(
        "(\"APPLICATION\" \"PDF\" (\"NAME\" \"REPORT.PDF\") NIL NIL \"BASE64\" {}",
        MULTI_PART2.len()
    );
    let simple_part = format!(
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" {} 2",
        "Shall we meet at the usual place at noon?\r\nBob\r\n".len()
    );
    let upper = |key: &str| -> Vec<String> {
        lines(&out, key)
            .iter()
            .map(|l| l.to_ascii_uppercase())
            .collect()
    };
    assert_eq!(
        upper("bodystructure"),
        [
            format!("* 1 FETCH (BODYSTRUCTURE {simple_part} NIL NIL NIL NIL))"),
            format!(
                "* 2 FETCH (BODYSTRUCTURE ({text_part} NIL NIL NIL NIL)\
                 {attachment} NIL (\"ATTACHMENT\" (\"FILENAME\" \"REPORT.PDF\")) NIL NIL) \
                 \"MIXED\" (\"BOUNDARY\" \"XYZ\") NIL NIL NIL))"
            ),
            "OK".into()
        ]
    );
    assert_eq!(
        upper("body"),
        [
            format!("* 1 FETCH (BODY {simple_part}))"),
            format!("* 2 FETCH (BODY ({text_part}){attachment}) \"MIXED\"))"),
            "OK".into()
        ]
    );
    // None of these items sets \Seen.
    assert_eq!(
        lines(&out, "flags_after"),
        [
            "* 1 FETCH (FLAGS (\\Flagged \\Seen))",
            "* 2 FETCH (FLAGS ())",
            "OK"
        ]
    );
}

#[tokio::test]
async fn fetch_body_sections_return_the_exact_appended_bytes() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_TWO}{}",
        r#"
out["whole"] = r.cmd("FETCH 2 (BODY.PEEK[])")
out["fields"] = r.cmd("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
out["fields_not"] = r.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (TO DATE MESSAGE-ID)])")
out["header"] = r.cmd("FETCH 2 (BODY.PEEK[HEADER])")
out["part1"] = r.cmd("FETCH 2 (BODY.PEEK[1])")
out["part2"] = r.cmd("FETCH 2 (BODY.PEEK[2])")
out["part2_mime"] = r.cmd("FETCH 2 (BODY.PEEK[2.MIME])")
out["text"] = r.cmd("FETCH 2 (BODY.PEEK[TEXT])")
out["partial"] = r.cmd("FETCH 2 (BODY.PEEK[]<0.10>)")
out["partial_mid"] = r.cmd("FETCH 2 (BODY.PEEK[1]<7.4>)")
out["rfc822_header"] = r.cmd("FETCH 1 (RFC822.HEADER)")
out["simple_part1"] = r.cmd("FETCH 1 (BODY.PEEK[1])")
out["flags_after_peek"] = r.cmd("FETCH 2 (FLAGS)")
# imaplib, the independent client, gets the same bytes.
m = imaps()
m.login("alice@example.test", PW)
m.select("INBOX", readonly=True)
typ, data = m.fetch("2", "(BODY.PEEK[])")
out["imaplib_same"] = typ == "OK" and data[0][1] == MULTI
typ, data = m.uid("FETCH", "1", "(BODY.PEEK[TEXT])")
out["imaplib_uid_text"] = [typ, s(data[0][0]), s(data[0][1])]
m.logout()
"#
    )));
    assert_eq!(
        lines(&out, "whole"),
        [format!("* 2 FETCH (BODY[] {})", lit(MULTI)), "OK".into()]
    );
    // RFC 3501 section 6.4.5: header fetches include the blank line after the header.
    assert_eq!(
        lines(&out, "fields"),
        [
            format!(
                "* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {})",
                lit(
                    "From: Alice Example <alice@example.test>\r\nSubject: Quarterly report\r\n\r\n"
                )
            ),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "fields_not"),
        [
            format!(
                "* 1 FETCH (BODY[HEADER.FIELDS.NOT (TO DATE MESSAGE-ID)] {})",
                lit("From: Bob Builder <bob@example.test>\r\nSubject: Lunch on Friday?\r\n\r\n")
            ),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "header"),
        [
            format!("* 2 FETCH (BODY[HEADER] {})", lit(MULTI_HEADER)),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "part1"),
        [
            format!("* 2 FETCH (BODY[1] {})", lit(MULTI_PART1)),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "part2"),
        [
            format!("* 2 FETCH (BODY[2] {})", lit(MULTI_PART2)),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "part2_mime"),
        [
            format!("* 2 FETCH (BODY[2.MIME] {})", lit(MULTI_PART2_MIME)),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "text"),
        [
            format!(
                "* 2 FETCH (BODY[TEXT] {})",
                lit(&MULTI[MULTI_HEADER.len()..])
            ),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "partial"),
        [
            format!("* 2 FETCH (BODY[]<0> {})", lit("From: Alic")),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "partial_mid"),
        [
            format!("* 2 FETCH (BODY[1]<7> {})", lit("find")),
            "OK".into()
        ]
    );
    let simple_header = &SIMPLE[..SIMPLE.find("\r\n\r\n").expect("header end") + 4];
    assert_eq!(
        lines(&out, "rfc822_header"),
        [
            format!("* 1 FETCH (RFC822.HEADER {})", lit(simple_header)),
            "OK".into()
        ]
    );
    // A non-multipart message's part 1 is its body (RFC 3501 section 6.4.5).
    assert_eq!(
        lines(&out, "simple_part1"),
        [
            format!(
                "* 1 FETCH (BODY[1] {})",
                lit(&SIMPLE[simple_header.len()..])
            ),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "flags_after_peek"),
        ["* 2 FETCH (FLAGS ())", "OK"]
    );
    assert_eq!(out["imaplib_same"], true, "{out}");
    assert_eq!(
        out["imaplib_uid_text"],
        serde_json::json!([
            "OK",
            format!(
                "1 (UID 1 BODY[TEXT] {{{}}}",
                SIMPLE.len() - simple_header.len()
            ),
            &SIMPLE[simple_header.len()..]
        ])
    );
}

#[tokio::test]
async fn fetch_body_without_peek_sets_seen_and_reports_the_flags() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_TWO}{}",
        r#"
out["peek"] = r.cmd("FETCH 2 (BODY.PEEK[1])")
out["after_peek"] = r.cmd("FETCH 2 (FLAGS)")
out["body"] = r.cmd("FETCH 2 (BODY[])")
out["after_body"] = r.cmd("FETCH 2 (FLAGS)")
out["uid_fetch"] = r.cmd("UID FETCH 2 (FLAGS)")
out["uid_fetch_size"] = r.cmd("UID FETCH 1:* (RFC822.SIZE)")
out["uid_absent"] = r.cmd("UID FETCH 99 (FLAGS)")
out["beyond"] = r.cmd("FETCH 3 (FLAGS)")
out["beyond_range"] = r.cmd("FETCH 2:3 (FLAGS)")
out["noop"] = r.cmd("NOOP")
"#
    )));
    assert_eq!(
        lines(&out, "peek"),
        [
            format!("* 2 FETCH (BODY[1] {})", lit(MULTI_PART1)),
            "OK".into()
        ]
    );
    assert_eq!(lines(&out, "after_peek"), ["* 2 FETCH (FLAGS ())", "OK"]);
    // RFC 3501 section 6.4.5: BODY[] sets \Seen; the changed flags come with the response.
    assert_eq!(
        lines(&out, "body"),
        [
            format!("* 2 FETCH (BODY[] {} FLAGS (\\Seen))", lit(MULTI)),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "after_body"),
        ["* 2 FETCH (FLAGS (\\Seen))", "OK"]
    );
    // RFC 3501 section 6.4.8: UID FETCH responses include the UID.
    assert_eq!(
        lines(&out, "uid_fetch"),
        ["* 2 FETCH (UID 2 FLAGS (\\Seen))", "OK"]
    );
    assert_eq!(
        lines(&out, "uid_fetch_size"),
        [
            format!("* 1 FETCH (UID 1 RFC822.SIZE {})", SIMPLE.len()),
            format!("* 2 FETCH (UID 2 RFC822.SIZE {})", MULTI.len()),
            "OK".into()
        ]
    );
    assert_eq!(lines(&out, "uid_absent"), ["OK"]);
    assert_eq!(lines(&out, "beyond"), ["BAD"]);
    assert_eq!(lines(&out, "beyond_range"), ["BAD"]);
    assert_eq!(lines(&out, "noop"), ["OK"]);
}

#[tokio::test]
async fn partial_fetch_past_the_end_is_empty_at_the_requested_origin() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_TWO}{}",
        r#"
out["past_end"] = r.cmd("FETCH 2 (BODY.PEEK[]<100000.10>)")
"#
    )));
    // RFC 3501 section 6.4.5: "If the origin octet is beyond the end of the text, an empty
    // string is returned"; section 7.4.2: the response names the origin octet requested.
    let got = lines(&out, "past_end");
    assert!(
        got == ["* 2 FETCH (BODY[]<100000> \"\")", "OK"]
            || got == ["* 2 FETCH (BODY[]<100000> {0}\r\n)", "OK"],
        "{got:?}"
    );
}

#[tokio::test]
async fn store_changes_flags_and_reports_them_unless_silent() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
for subject in ["one", "two", "three"]:
    r.append("INBOX", msg(subject))
r.cmd("SELECT INBOX")
out["add"] = r.cmd("STORE 1 +FLAGS (\\Flagged)")
out["add_silent"] = r.cmd("STORE 1 +FLAGS.SILENT (\\Seen)")
out["after_add"] = r.cmd("FETCH 1 (FLAGS)")
out["remove"] = r.cmd("STORE 1 -FLAGS (\\Flagged)")
out["replace"] = r.cmd("STORE 2 FLAGS (\\Answered $Label1)")
out["replace_silent"] = r.cmd("STORE 2 FLAGS.SILENT (\\Draft)")
out["after_replace"] = r.cmd("FETCH 2 (FLAGS)")
out["remove_silent"] = r.cmd("STORE 2 -FLAGS.SILENT (\\Draft)")
out["after_remove"] = r.cmd("FETCH 2 (FLAGS)")
out["uid_store"] = r.cmd("UID STORE 3 +FLAGS ($Label1 NonJunk)")
out["uid_store_silent"] = r.cmd("UID STORE 3 -FLAGS.SILENT (NonJunk)")
out["range"] = r.cmd("STORE 1:3 +FLAGS (\\Answered)")
out["keyword_search"] = r.cmd("SEARCH KEYWORD $Label1")
out["beyond"] = r.cmd("STORE 4 +FLAGS (\\Seen)")
out["all_flags"] = r.cmd("FETCH 1:3 (FLAGS)")
"#,
    ));
    assert_eq!(
        lines(&out, "add"),
        ["* 1 FETCH (UID 1 FLAGS (\\Flagged))", "OK"]
    );
    assert_eq!(lines(&out, "add_silent"), ["OK"]);
    assert_eq!(
        lines(&out, "after_add"),
        ["* 1 FETCH (FLAGS (\\Flagged \\Seen))", "OK"]
    );
    assert_eq!(
        lines(&out, "remove"),
        ["* 1 FETCH (UID 1 FLAGS (\\Seen))", "OK"]
    );
    assert_eq!(
        lines(&out, "replace"),
        ["* 2 FETCH (UID 2 FLAGS ($Label1 \\Answered))", "OK"]
    );
    assert_eq!(lines(&out, "replace_silent"), ["OK"]);
    assert_eq!(
        lines(&out, "after_replace"),
        ["* 2 FETCH (FLAGS (\\Draft))", "OK"]
    );
    assert_eq!(lines(&out, "remove_silent"), ["OK"]);
    assert_eq!(lines(&out, "after_remove"), ["* 2 FETCH (FLAGS ())", "OK"]);
    assert_eq!(
        lines(&out, "uid_store"),
        ["* 3 FETCH (UID 3 FLAGS ($Label1 NonJunk))", "OK"]
    );
    assert_eq!(lines(&out, "uid_store_silent"), ["OK"]);
    assert_eq!(
        lines(&out, "range"),
        [
            "* 1 FETCH (UID 1 FLAGS (\\Answered \\Seen))",
            "* 2 FETCH (UID 2 FLAGS (\\Answered))",
            "* 3 FETCH (UID 3 FLAGS ($Label1 \\Answered))",
            "OK"
        ]
    );
    assert_eq!(lines(&out, "keyword_search"), ["* SEARCH 3", "OK"]);
    assert_eq!(lines(&out, "beyond"), ["BAD"]);
    assert_eq!(
        lines(&out, "all_flags"),
        [
            "* 1 FETCH (FLAGS (\\Answered \\Seen))",
            "* 2 FETCH (FLAGS (\\Answered))",
            "* 3 FETCH (FLAGS ($Label1 \\Answered))",
            "OK"
        ]
    );
}

#[tokio::test]
async fn examine_is_read_only_for_store_expunge_and_implicit_seen() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_TWO}{}",
        r#"
r.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
out["examine"] = r.cmd("EXAMINE INBOX")
out["store"] = r.cmd("STORE 2 +FLAGS (\\Flagged)")
out["uid_store"] = r.cmd("UID STORE 2 +FLAGS.SILENT (\\Flagged)")
out["body"] = r.cmd("FETCH 2 (BODY[1])")
out["expunge"] = r.cmd("EXPUNGE")
out["uid_expunge"] = r.cmd("UID EXPUNGE 1")
out["flags"] = r.cmd("FETCH 1:2 (FLAGS)")
"#
    )));
    let examine = lines(&out, "examine");
    assert_eq!(examine[1], "* OK [PERMANENTFLAGS ()]", "{examine:?}");
    assert!(examine.contains(&"* 2 EXISTS".to_string()), "{examine:?}");
    assert_eq!(examine.last().map(String::as_str), Some("OK [READ-ONLY]"));
    assert_eq!(lines(&out, "store"), ["NO [READ-ONLY]"]);
    assert_eq!(lines(&out, "uid_store"), ["NO [READ-ONLY]"]);
    // Read-only: BODY[] does not set \Seen, so no FLAGS item either.
    assert_eq!(
        lines(&out, "body"),
        [
            format!("* 2 FETCH (BODY[1] {})", lit(MULTI_PART1)),
            "OK".into()
        ]
    );
    assert_eq!(lines(&out, "expunge"), ["NO [READ-ONLY]"]);
    assert_eq!(lines(&out, "uid_expunge"), ["NO [READ-ONLY]"]);
    assert_eq!(
        lines(&out, "flags"),
        [
            "* 1 FETCH (FLAGS (\\Deleted \\Flagged \\Seen))",
            "* 2 FETCH (FLAGS ())",
            "OK"
        ]
    );
}

/// Five messages in INBOX with UIDs 2 to 6 (sequence numbers 1 to 5):
///
/// | seq | from  | subject            | sent        | internal    | flags                     |
/// |-----|-------|--------------------|-------------|-------------|---------------------------|
/// | 1   | carol | Budget meeting     | 01-Mar-2024 | 01-Mar-2024 | \Seen                     |
/// | 2   | dave  | Re: Budget meeting | 05-Mar-2024 | 05-Mar-2024 | \Flagged                  |
/// | 3   | eve   | Holiday photos     | 10-Mar-2024 | 10-Mar-2024 | \Seen \Flagged $Label1    |
/// | 4   | carol | Invoice 42         | 15-Mar-2024 | 15-Mar-2024 |                           |
/// | 5   | alice | Quarterly report   | 15-Jan-2024 | 20-Mar-2024 | $Label1 (MULTI)           |
///
/// Message 3 is about 3 kB, the others under 1 kB; only message 1 has `X-Priority`.
const SEED_SEARCH: &str = r#"
M1 = msg("Budget meeting", date="Fri, 01 Mar 2024 09:00:00 +0000", body="The budget spreadsheet is attached.\r\n", extra="X-Priority: 1\r\n")
M2 = msg("Re: Budget meeting", sender="Dave Lister <dave@example.test>", date="Tue, 05 Mar 2024 09:00:00 +0000", body="I cannot attend the meeting.\r\n")
M3 = msg("Holiday photos", sender="Eve Moneypenny <eve@example.test>", date="Sun, 10 Mar 2024 09:00:00 +0000", body="Photos from the beach at sunset.\r\n" + ("x" * 70 + "\r\n") * 40)
M4 = msg("Invoice 42", date="Fri, 15 Mar 2024 09:00:00 +0000", body="Please pay invoice 42 by Friday.\r\n")
r = Raw()
seed_shifted(r, [
    (M1, "\\Seen", "01-Mar-2024 12:00:00 +0000"),
    (M2, "\\Flagged", "05-Mar-2024 12:00:00 +0000"),
    (M3, "\\Seen \\Flagged $Label1", "10-Mar-2024 12:00:00 +0000"),
    (M4, "", "15-Mar-2024 12:00:00 +0000"),
    (MULTI, "$Label1", "20-Mar-2024 12:00:00 +0000"),
])
assert r.cmd("SELECT INBOX")[-1] == "OK [READ-WRITE]"
"#;

#[tokio::test]
async fn search_keys_select_the_right_messages() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_SHIFTED}{SEED_SEARCH}{}",
        r#"
queries = {
    "ALL": "ALL",
    "UNSEEN": "UNSEEN",
    "SEEN": "SEEN",
    "FLAGGED": "FLAGGED",
    "UNFLAGGED": "UNFLAGGED",
    "KEYWORD": "KEYWORD $Label1",
    "UNKEYWORD": "UNKEYWORD $Label1",
    "DELETED": "DELETED",
    "FROM": "FROM carol",
    "FROM_NAME": 'FROM "Dave Lister"',
    "TO": "TO bob",
    "CC": "CC carol",
    "SUBJECT": "SUBJECT budget",
    "SUBJECT_PHRASE": 'SUBJECT "budget meeting"',
    "SUBJECT_NONE": "SUBJECT nothing-like-this",
    "HEADER": "HEADER X-Priority 1",
    "HEADER_EMPTY": 'HEADER X-Priority ""',
    "HEADER_MESSAGE_ID": "HEADER Message-ID report-1",
    "BODY": "BODY spreadsheet",
    "BODY_PART": "BODY figures",
    "BODY_NOT_HEADER": "BODY budget",
    "TEXT": "TEXT budget",
    "TEXT_HEADER": "TEXT carol",
    "LARGER": "LARGER 2000",
    "SMALLER": "SMALLER 400",
    "LARGER_EDGE": "LARGER %d" % (len(M3) - 1),
    "LARGER_EXACT": "LARGER %d" % len(M3),
    "SMALLER_EXACT": "SMALLER %d" % len(M3),
    "SMALLER_EDGE": "SMALLER %d" % (len(M3) + 1),
    "SINCE": "SINCE 10-Mar-2024",
    "BEFORE": "BEFORE 5-Mar-2024",
    "ON": "ON 5-Mar-2024",
    "SENTSINCE": "SENTSINCE 1-Mar-2024",
    "SENTBEFORE": "SENTBEFORE 1-Mar-2024",
    "SENTON": "SENTON 15-Jan-2024",
    "SEQUENCE": "2:3",
    "SEQUENCE_STAR": "4:*",
    "UID_RANGE": "UID 3:4",
    "OR": "OR FROM dave SUBJECT invoice",
    "NOT": "NOT SEEN",
    "NOT_OR": "NOT OR SEEN FLAGGED",
    "AND_NOT": "FROM carol NOT SUBJECT invoice",
    "PARENTHESES": "(OR SEEN FLAGGED) KEYWORD $Label1",
    "OR_GROUP": "OR (SEEN FLAGGED) LARGER 600",
    "CHARSET": "CHARSET UTF-8 SUBJECT budget",
}
for name, query in queries.items():
    out[name] = r.cmd("SEARCH " + query)
out["UID_SEARCH_RANGE"] = r.cmd("UID SEARCH UID 3:4")
out["UID_SEARCH_FLAGGED"] = r.cmd("UID SEARCH FLAGGED")
out["UID_SEARCH_ALL"] = r.cmd("UID SEARCH ALL")
out["UID_SEARCH_STAR"] = r.cmd("UID SEARCH UID 5:*")
out["BADCHARSET"] = r.cmd("SEARCH CHARSET KOI8-R SUBJECT budget")
out["after"] = r.cmd("NOOP")
m = imaps()
m.login("alice@example.test", PW)
m.select("INBOX")
out["imaplib_from"] = s(m.search(None, "FROM", '"carol"'))
out["imaplib_uid_keyword"] = s(m.uid("SEARCH", "KEYWORD", "$Label1"))
m.logout()
"#
    )));
    let expected: &[(&str, &str)] = &[
        ("ALL", "1 2 3 4 5"),
        ("UNSEEN", "2 4 5"),
        ("SEEN", "1 3"),
        ("FLAGGED", "2 3"),
        ("UNFLAGGED", "1 4 5"),
        ("KEYWORD", "3 5"),
        ("UNKEYWORD", "1 2 4"),
        ("DELETED", ""),
        ("FROM", "1 4"),
        ("FROM_NAME", "2"),
        ("TO", "5"),
        ("CC", "5"),
        ("SUBJECT", "1 2"),
        ("SUBJECT_PHRASE", "1 2"),
        ("SUBJECT_NONE", ""),
        ("HEADER", "1"),
        ("HEADER_EMPTY", "1"),
        ("HEADER_MESSAGE_ID", "5"),
        ("BODY", "1"),
        ("BODY_PART", "5"),
        ("BODY_NOT_HEADER", "1"),
        ("TEXT", "1 2"),
        ("TEXT_HEADER", "1 4 5"),
        ("LARGER", "3"),
        ("SMALLER", "1 2 4"),
        ("LARGER_EDGE", "3"),
        ("LARGER_EXACT", ""),
        ("SMALLER_EXACT", "1 2 4 5"),
        ("SMALLER_EDGE", "1 2 3 4 5"),
        ("SINCE", "3 4 5"),
        ("BEFORE", "1"),
        ("ON", "2"),
        ("SENTSINCE", "1 2 3 4"),
        ("SENTBEFORE", "5"),
        ("SENTON", "5"),
        ("SEQUENCE", "2 3"),
        ("SEQUENCE_STAR", "4 5"),
        ("UID_RANGE", "2 3"),
        ("OR", "2 4"),
        ("NOT", "2 4 5"),
        ("NOT_OR", "4 5"),
        ("AND_NOT", "1"),
        ("PARENTHESES", "3"),
        ("OR_GROUP", "3 5"),
        ("CHARSET", "1 2"),
        ("UID_SEARCH_RANGE", "3 4"),
        ("UID_SEARCH_FLAGGED", "3 4"),
        ("UID_SEARCH_ALL", "2 3 4 5 6"),
        ("UID_SEARCH_STAR", "5 6"),
    ];
    let mut wrong = Vec::new();
    for (key, numbers) in expected {
        let want = if numbers.is_empty() {
            "* SEARCH".to_string()
        } else {
            format!("* SEARCH {numbers}")
        };
        let got = lines(&out, key);
        if got != [want.clone(), "OK".to_string()] {
            wrong.push(format!("{key}: expected [{want}, OK], got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        lines(&out, "BADCHARSET"),
        ["NO [BADCHARSET (UTF-8 US-ASCII)]"]
    );
    assert_eq!(lines(&out, "after"), ["OK"]);
    assert_eq!(out["imaplib_from"], serde_json::json!(["OK", ["1 4"]]));
    assert_eq!(
        out["imaplib_uid_keyword"],
        serde_json::json!(["OK", ["4 6"]])
    );
}

#[tokio::test]
async fn search_matches_decoded_utf8_subjects_sent_as_a_literal() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
r.append("INBOX", msg("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?="))
r.append("INBOX", msg("Greetings from Munich"))
r.cmd("SELECT INBOX")
out["literal"] = r.literal("SEARCH CHARSET UTF-8 SUBJECT", "Grüße".encode("utf-8"))
out["ascii"] = r.cmd("SEARCH SUBJECT munich")
out["envelope"] = r.cmd("FETCH 1 (ENVELOPE)")
"#,
    ));
    assert_eq!(lines(&out, "literal"), ["* SEARCH 1", "OK"]);
    assert_eq!(lines(&out, "ascii"), ["* SEARCH 2", "OK"]);
    // ENVELOPE carries the subject as it is in the header (RFC 3501 section 7.4.2).
    let envelope = lines(&out, "envelope");
    assert!(
        envelope[0].contains("\"=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=\""),
        "{envelope:?}"
    );
}

#[tokio::test]
async fn sort_orders_by_subject_date_arrival_from_and_size() {
    let (_db, access) = start().await;
    // seq (uid) | subject     | from | sent   | arrival | body
    // 1 (2)     | Re: banana  | zed  | Jan 12 | Feb 05  | 300
    // 2 (3)     | apple       | amy  | Jan 10 | Feb 03  | 100
    // 3 (4)     | Fwd: cherry | bob  | Jan 08 | Feb 04  | 500
    // 4 (5)     | Apple       | carl | Jan 11 | Feb 01  | 200
    let out = access.python(&script(&format!(
        "{SEED_SHIFTED}{}",
        r#"
r = Raw()
seed_shifted(r, [
    (msg("Re: banana", "Zed <zed@example.test>", "Fri, 12 Jan 2024 10:00:00 +0000", "b" * 300), "", "05-Feb-2024 10:00:00 +0000"),
    (msg("apple", "Amy <amy@example.test>", "Wed, 10 Jan 2024 10:00:00 +0000", "a" * 100), "", "03-Feb-2024 10:00:00 +0000"),
    (msg("Fwd: cherry", "bob@example.test", "Mon, 08 Jan 2024 10:00:00 +0000", "c" * 500), "", "04-Feb-2024 10:00:00 +0000"),
    (msg("Apple", "Carl <carl@example.test>", "Thu, 11 Jan 2024 10:00:00 +0000", "d" * 200), "", "01-Feb-2024 10:00:00 +0000"),
])
r.cmd("SELECT INBOX")
queries = {
    "SUBJECT": "(SUBJECT) UTF-8 ALL",
    "REVERSE_SUBJECT": "(REVERSE SUBJECT) UTF-8 ALL",
    "DATE": "(DATE) UTF-8 ALL",
    "REVERSE_DATE": "(REVERSE DATE) UTF-8 ALL",
    "ARRIVAL": "(ARRIVAL) US-ASCII ALL",
    "FROM": "(FROM) UTF-8 ALL",
    "SIZE": "(SIZE) UTF-8 ALL",
    "REVERSE_SIZE": "(REVERSE SIZE) UTF-8 ALL",
    "SUBJECT_REVERSE_DATE": "(SUBJECT REVERSE DATE) UTF-8 ALL",
    "SEARCHED": "(DATE) UTF-8 SUBJECT apple",
}
for name, query in queries.items():
    out[name] = r.cmd("SORT " + query)
out["UID"] = r.cmd("UID SORT (ARRIVAL) UTF-8 ALL")
out["BADCHARSET"] = r.cmd("SORT (SUBJECT) KOI8-R ALL")
m = imaps()
m.login("alice@example.test", PW)
m.select("INBOX")
out["imaplib_subject"] = s(m.sort("(SUBJECT)", "UTF-8", "ALL"))
out["imaplib_reverse_date"] = s(m.sort("(REVERSE DATE)", "UTF-8", "ALL"))
out["imaplib_uid"] = s(m.uid("SORT", "(FROM)", "UTF-8", "ALL"))
m.logout()
"#
    )));
    let expected: &[(&str, &str)] = &[
        // RFC 5256: base subjects (no Re:/Fwd:) compared with i;ascii-casemap, ties by number.
        ("SUBJECT", "2 4 1 3"),
        // REVERSE turns the criterion around; the final tie-break stays ascending.
        ("REVERSE_SUBJECT", "3 1 2 4"),
        ("DATE", "3 2 4 1"),
        ("REVERSE_DATE", "1 4 2 3"),
        ("ARRIVAL", "4 2 3 1"),
        // FROM sorts by the first From address's mailbox part.
        ("FROM", "2 3 4 1"),
        ("SIZE", "2 4 1 3"),
        ("REVERSE_SIZE", "3 1 4 2"),
        ("SUBJECT_REVERSE_DATE", "4 2 1 3"),
        ("SEARCHED", "2 4"),
        ("UID", "5 3 4 2"),
    ];
    let mut wrong = Vec::new();
    for (key, numbers) in expected {
        let want = format!("* SORT {numbers}");
        let got = lines(&out, key);
        if got != [want.clone(), "OK".to_string()] {
            wrong.push(format!("{key}: expected [{want}, OK], got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        lines(&out, "BADCHARSET"),
        ["NO [BADCHARSET (UTF-8 US-ASCII)]"]
    );
    assert_eq!(
        out["imaplib_subject"],
        serde_json::json!(["OK", ["2 4 1 3"]])
    );
    assert_eq!(
        out["imaplib_reverse_date"],
        serde_json::json!(["OK", ["1 4 2 3"]])
    );
    assert_eq!(out["imaplib_uid"], serde_json::json!(["OK", ["3 4 5 2"]]));
}

/// INBOX: 1 `\Seen` (internal date 01-Mar-2024), 2 `\Flagged $Label1`, 3 no flags; an empty
/// Archive; INBOX selected. UIDs equal sequence numbers.
const SEED_COPY: &str = r#"
r = Raw()
r.append("INBOX", msg("first"), "\\Seen", "01-Mar-2024 12:00:00 +0000")
r.append("INBOX", msg("second"), "\\Flagged $Label1", "02-Mar-2024 12:00:00 +0000")
r.append("INBOX", msg("third"), "", "03-Mar-2024 12:00:00 +0000")
assert r.cmd("CREATE Archive")[-1] == "OK"
archive = r.cmd("STATUS Archive (UIDVALIDITY)")
out["archive_validity"] = int(re.search(r"UIDVALIDITY (\d+)", archive[0]).group(1))
assert r.cmd("SELECT INBOX")[-1] == "OK [READ-WRITE]"
"#;

#[tokio::test]
async fn copy_reports_copyuid_and_keeps_flags_and_dates() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_COPY}{}",
        r#"
out["copy"] = r.cmd("COPY 1:2 Archive")
out["status"] = r.cmd("STATUS Archive (MESSAGES UIDNEXT)")
out["uid_copy"] = r.cmd("UID COPY 3 Archive")
out["uid_copy_absent"] = r.cmd("UID COPY 99 Archive")
out["missing"] = r.cmd("COPY 1 Missing")
out["beyond"] = r.cmd("COPY 4 Archive")
out["source_after"] = r.cmd("NOOP")
out["source_flags"] = r.cmd("FETCH 1:* (FLAGS)")
other = Raw()
other.cmd("EXAMINE Archive")
out["copies"] = other.cmd("FETCH 1:* (UID FLAGS INTERNALDATE)")
"#
    )));
    let validity = out["archive_validity"].as_u64().expect("validity");
    assert_eq!(
        lines(&out, "copy"),
        [format!("OK [COPYUID {validity} 1:2 1:2]")]
    );
    assert_eq!(
        lines(&out, "status"),
        ["* STATUS \"Archive\" (MESSAGES 2 UIDNEXT 3)", "OK"]
    );
    assert_eq!(
        lines(&out, "uid_copy"),
        [format!("OK [COPYUID {validity} 3 3]")]
    );
    assert_eq!(lines(&out, "uid_copy_absent"), ["OK"]);
    assert_eq!(lines(&out, "missing"), ["NO [TRYCREATE]"]);
    assert_eq!(lines(&out, "beyond"), ["BAD"]);
    assert_eq!(lines(&out, "source_after"), ["OK"]);
    assert_eq!(
        lines(&out, "source_flags"),
        [
            "* 1 FETCH (FLAGS (\\Seen))",
            "* 2 FETCH (FLAGS ($Label1 \\Flagged))",
            "* 3 FETCH (FLAGS ())",
            "OK"
        ]
    );
    // RFC 3501 section 6.4.7: flags and internal date SHOULD be preserved.
    assert_eq!(
        lines(&out, "copies"),
        [
            "* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"01-Mar-2024 12:00:00 +0000\")",
            "* 2 FETCH (UID 2 FLAGS ($Label1 \\Flagged) INTERNALDATE \"02-Mar-2024 12:00:00 +0000\")",
            "* 3 FETCH (UID 3 FLAGS () INTERNALDATE \"03-Mar-2024 12:00:00 +0000\")",
            "OK"
        ]
    );
}

#[tokio::test]
async fn move_reports_copyuid_untagged_then_expunges() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_COPY}{}",
        r#"
out["move"] = r.cmd("MOVE 2 Archive")
out["uid_move"] = r.cmd("UID MOVE 3 Archive")
out["missing"] = r.cmd("MOVE 1 Missing")
out["uid_missing"] = r.cmd("UID MOVE 1 Missing")
out["left"] = r.cmd("FETCH 1:* (UID FLAGS)")
out["examine"] = r.cmd("EXAMINE Archive")
out["moved"] = r.cmd("FETCH 1:* (UID FLAGS INTERNALDATE)")
out["read_only"] = r.cmd("MOVE 1 INBOX")
m = imaps()
m.login("alice@example.test", PW)
m.select("INBOX")
out["imaplib_move"] = s(m.uid("MOVE", "1", "Archive"))
out["imaplib_untagged"] = s(m.response("COPYUID"))
out["imaplib_status"] = s(m.status("INBOX", "(MESSAGES)"))
m.logout()
"#
    )));
    let validity = out["archive_validity"].as_u64().expect("validity");
    // RFC 6851 section 4.3: COPYUID in an untagged OK before the EXPUNGE responses.
    assert_eq!(
        lines(&out, "move"),
        [
            format!("* OK [COPYUID {validity} 2 1]"),
            "* 2 EXPUNGE".into(),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "uid_move"),
        [
            format!("* OK [COPYUID {validity} 3 2]"),
            "* 2 EXPUNGE".into(),
            "OK".into()
        ]
    );
    assert_eq!(lines(&out, "missing"), ["NO [TRYCREATE]"]);
    assert_eq!(lines(&out, "uid_missing"), ["NO [TRYCREATE]"]);
    assert_eq!(
        lines(&out, "left"),
        ["* 1 FETCH (UID 1 FLAGS (\\Seen))", "OK"]
    );
    assert!(
        lines(&out, "examine").contains(&"* 2 EXISTS".to_string()),
        "{out}"
    );
    assert_eq!(
        lines(&out, "moved"),
        [
            "* 1 FETCH (UID 1 FLAGS ($Label1 \\Flagged) INTERNALDATE \"02-Mar-2024 12:00:00 +0000\")",
            "* 2 FETCH (UID 2 FLAGS () INTERNALDATE \"03-Mar-2024 12:00:00 +0000\")",
            "OK"
        ]
    );
    assert_eq!(lines(&out, "read_only"), ["NO [READ-ONLY]"]);
    assert_eq!(out["imaplib_move"][0], "OK", "{out}");
    assert_eq!(
        out["imaplib_untagged"],
        serde_json::json!(["COPYUID", [format!("{validity} 1 3")]])
    );
    assert_eq!(
        out["imaplib_status"],
        serde_json::json!(["OK", ["\"INBOX\" (MESSAGES 0)"]])
    );
}

/// Applies EXPUNGE responses one after the other to the UIDs of a mailbox (RFC 3501 section
/// 7.4.1: each one renumbers the messages after it at once).
fn apply_expunges(mut uids: Vec<u32>, responses: &[String]) -> Vec<u32> {
    for line in responses {
        if let Some(seq) = line
            .strip_prefix("* ")
            .and_then(|rest| rest.strip_suffix(" EXPUNGE"))
        {
            let seq: usize = seq.parse().expect("sequence number");
            assert!(seq >= 1 && seq <= uids.len(), "{seq} out of {uids:?}");
            uids.remove(seq - 1);
        }
    }
    uids
}

#[tokio::test]
async fn expunge_reports_numbers_for_sequential_application_and_uid_expunge_only_its_set() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
for n in range(1, 6):
    r.append("INBOX", msg("message %d" % n))
r.cmd("SELECT INBOX")
out["nothing"] = r.cmd("EXPUNGE")
out["mark"] = r.cmd("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
out["expunge"] = r.cmd("EXPUNGE")
out["left"] = r.cmd("FETCH 1:* (UID)")
r.cmd("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
out["uid_expunge"] = r.cmd("UID EXPUNGE 3")
out["after_uid_expunge"] = r.cmd("FETCH 1:* (UID FLAGS)")
out["uid_expunge_gone"] = r.cmd("UID EXPUNGE 2:4")
out["status"] = r.cmd("STATUS INBOX (MESSAGES)")
"#,
    ));
    assert_eq!(lines(&out, "nothing"), ["OK"]);
    assert_eq!(lines(&out, "mark"), ["OK"]);
    let expunge = lines(&out, "expunge");
    assert_eq!(expunge, ["* 4 EXPUNGE", "* 2 EXPUNGE", "OK"]);
    assert_eq!(apply_expunges(vec![1, 2, 3, 4, 5], &expunge), [1, 3, 5]);
    assert_eq!(
        lines(&out, "left"),
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 3)",
            "* 3 FETCH (UID 5)",
            "OK"
        ]
    );
    // RFC 4315 section 2.1: only \Deleted messages whose UID is in the set go.
    assert_eq!(lines(&out, "uid_expunge"), ["* 2 EXPUNGE", "OK"]);
    assert_eq!(
        lines(&out, "after_uid_expunge"),
        [
            "* 1 FETCH (UID 1 FLAGS (\\Deleted))",
            "* 2 FETCH (UID 5 FLAGS (\\Deleted))",
            "OK"
        ]
    );
    assert_eq!(lines(&out, "uid_expunge_gone"), ["OK"]);
    assert_eq!(
        lines(&out, "status"),
        ["* STATUS \"INBOX\" (MESSAGES 2)", "OK"]
    );
}

#[tokio::test]
async fn close_expunges_silently_but_unselect_and_close_after_examine_do_not() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
for n in range(1, 4):
    r.append("INBOX", msg("message %d" % n))
r.cmd("SELECT INBOX")
r.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
out["unselect"] = r.cmd("UNSELECT")
out["fetch_unselected"] = r.cmd("FETCH 1 (FLAGS)")
out["select_after_unselect"] = r.cmd("SELECT INBOX")
out["flags_after_unselect"] = r.cmd("FETCH 1 (FLAGS)")
out["close"] = r.cmd("CLOSE")
out["fetch_closed"] = r.cmd("FETCH 1 (FLAGS)")
out["select_after_close"] = r.cmd("SELECT INBOX")
out["uids_after_close"] = r.cmd("FETCH 1:* (UID)")
r.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
r.cmd("EXAMINE INBOX")
out["close_examined"] = r.cmd("CLOSE")
out["status"] = r.cmd("STATUS INBOX (MESSAGES)")
"#,
    ));
    // RFC 3691: UNSELECT leaves \Deleted messages alone.
    assert_eq!(lines(&out, "unselect"), ["OK"]);
    assert_eq!(lines(&out, "fetch_unselected"), ["BAD"]);
    assert!(
        lines(&out, "select_after_unselect").contains(&"* 3 EXISTS".to_string()),
        "{out}"
    );
    assert_eq!(
        lines(&out, "flags_after_unselect"),
        ["* 1 FETCH (FLAGS (\\Deleted))", "OK"]
    );
    // RFC 3501 section 6.4.2: CLOSE removes them without EXPUNGE responses.
    assert_eq!(lines(&out, "close"), ["OK"]);
    assert_eq!(lines(&out, "fetch_closed"), ["BAD"]);
    assert!(
        lines(&out, "select_after_close").contains(&"* 2 EXISTS".to_string()),
        "{out}"
    );
    assert_eq!(
        lines(&out, "uids_after_close"),
        ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)", "OK"]
    );
    // ... except when the mailbox was selected read-only.
    assert_eq!(lines(&out, "close_examined"), ["OK"]);
    assert_eq!(
        lines(&out, "status"),
        ["* STATUS \"INBOX\" (MESSAGES 2)", "OK"]
    );
}

#[tokio::test]
async fn condstore_reports_modseqs_and_guards_stores_with_unchangedsince() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
def highest(lines):
    return int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(lines)).group(1))
def modseq(line):
    return int(re.search(r"MODSEQ \((\d+)\)", line).group(1))
r = Raw()
for n in range(1, 4):
    r.append("INBOX", msg("message %d" % n))
out["enable"] = r.cmd("ENABLE CONDSTORE")
out["select"] = r.cmd("SELECT INBOX")
h0 = out["h0"] = highest(out["select"])
out["modseqs"] = r.cmd("FETCH 1:* (MODSEQ)")
out["store"] = r.cmd("STORE 2 +FLAGS (\\Seen)")
x = out["x"] = modseq(out["store"][0])
out["changed"] = r.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h0)
out["changed_none"] = r.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % x)
out["conditional"] = r.cmd("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % h0)
out["uid_conditional"] = r.cmd("UID STORE 1:3 (UNCHANGEDSINCE %d) -FLAGS.SILENT (\\Flagged)" % x)
out["zero"] = r.cmd("STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Answered)")
out["final"] = r.cmd("FETCH 1:* (MODSEQ FLAGS)")
out["search"] = r.cmd("SEARCH MODSEQ %d" % h0)
out["search_none"] = r.cmd("SEARCH MODSEQ %d" % (max(modseq(l) for l in out["final"][:-1]) + 1))
other = Raw()
out["status"] = other.cmd("STATUS INBOX (HIGHESTMODSEQ)")
other.cmd("SELECT INBOX")
other.cmd("STORE 3 +FLAGS.SILENT (\\Draft)")
out["noop"] = r.cmd("NOOP")
out["status_after"] = other.cmd("STATUS INBOX (HIGHESTMODSEQ)")
"#,
    ));
    assert_eq!(lines(&out, "enable"), ["* ENABLED CONDSTORE", "OK"]);
    let h0 = out["h0"].as_u64().expect("h0");
    let initial = modseqs(&lines(&out, "modseqs"));
    assert_eq!(initial.len(), 3, "{out}");
    assert_eq!(initial.iter().map(|(_, m)| *m).max(), Some(h0), "{out}");
    // STORE by a CONDSTORE client reports the new MODSEQ (RFC 7162 section 3.1.3).
    let x = out["x"].as_u64().expect("x");
    assert!(x > h0, "{out}");
    assert_eq!(
        lines(&out, "store"),
        [
            format!("* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ ({x}))"),
            "OK".into()
        ]
    );
    // CHANGEDSINCE: only what changed after the value, with MODSEQ (RFC 7162 section 3.1.4).
    assert_eq!(
        lines(&out, "changed"),
        [
            format!("* 2 FETCH (FLAGS (\\Seen) MODSEQ ({x}))"),
            "OK".into()
        ]
    );
    assert_eq!(lines(&out, "changed_none"), ["OK"]);
    // UNCHANGEDSINCE: message 2 changed after h0, so it is left alone and named in MODIFIED.
    let conditional = lines(&out, "conditional");
    assert_eq!(
        conditional.last().map(String::as_str),
        Some("OK [MODIFIED 2]"),
        "{conditional:?}"
    );
    let changed = modseqs(&conditional);
    assert_eq!(
        changed.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [1, 3],
        "{conditional:?}"
    );
    assert!(changed.iter().all(|(_, m)| *m > x), "{conditional:?}");
    for (seq, modseq) in &changed {
        assert!(
            conditional.contains(&format!(
                "* {seq} FETCH (UID {seq} FLAGS (\\Flagged) MODSEQ ({modseq}))"
            )),
            "{conditional:?}"
        );
    }
    // UID STORE names UIDs in MODIFIED; messages 1 and 3 changed after x.
    let uid_conditional = lines(&out, "uid_conditional");
    assert_eq!(
        uid_conditional.last().map(String::as_str),
        Some("OK [MODIFIED 1,3]"),
        "{uid_conditional:?}"
    );
    assert!(
        !uid_conditional
            .iter()
            .any(|l| l.starts_with("* 1 ") || l.starts_with("* 3 ")),
        "{uid_conditional:?}"
    );
    // UNCHANGEDSINCE 0 always fails (RFC 7162 section 3.1.3).
    assert_eq!(lines(&out, "zero"), ["OK [MODIFIED 1]"]);
    let last = lines(&out, "final");
    assert_eq!(last.len(), 4, "{last:?}");
    assert!(last[0].ends_with("FLAGS (\\Flagged))"), "{last:?}");
    assert!(last[1].ends_with("FLAGS (\\Seen))"), "{last:?}");
    assert!(last[2].ends_with("FLAGS (\\Flagged))"), "{last:?}");
    let now = modseqs(&last);
    let z = now.iter().map(|(_, m)| *m).max().expect("modseqs");
    // SEARCH MODSEQ: messages at or above the value, and the highest of them (section 3.1.5).
    assert_eq!(
        lines(&out, "search"),
        [format!("* SEARCH 1 2 3 (MODSEQ {z})"), "OK".into()]
    );
    assert_eq!(lines(&out, "search_none"), ["* SEARCH", "OK"]);
    assert_eq!(
        lines(&out, "status"),
        [
            format!("* STATUS \"INBOX\" (HIGHESTMODSEQ {z})"),
            "OK".into()
        ]
    );
    // Another session's change reaches this CONDSTORE session with its MODSEQ.
    let noop = lines(&out, "noop");
    let w = modseqs(&noop);
    assert_eq!(w.len(), 1, "{noop:?}");
    assert!(w[0].1 > z, "{noop:?}");
    assert_eq!(
        noop,
        [
            format!(
                "* 3 FETCH (UID 3 FLAGS (\\Draft \\Flagged) MODSEQ ({}))",
                w[0].1
            ),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "status_after"),
        [
            format!("* STATUS \"INBOX\" (HIGHESTMODSEQ {})", w[0].1),
            "OK".into()
        ]
    );
}

#[tokio::test]
async fn a_second_session_sees_flag_changes_expunges_and_appends_on_noop() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
a = Raw()
for n in range(1, 4):
    a.append("INBOX", msg("message %d" % n))
a.cmd("SELECT INBOX")
b = Raw()
b.cmd("SELECT INBOX")
out["a_store"] = a.cmd("STORE 1 +FLAGS (\\Flagged)")
out["b_noop"] = b.cmd("NOOP")
out["b_noop_again"] = b.cmd("NOOP")
a.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
out["a_expunge"] = a.cmd("EXPUNGE")
# RFC 3501 section 7.4.1: no EXPUNGE during FETCH, STORE or SEARCH (numbers would shift).
out["b_fetch"] = b.cmd("FETCH 1:3 (UID)")
out["b_store"] = b.cmd("STORE 3 +FLAGS.SILENT (\\Seen)")
out["b_search"] = b.cmd("SEARCH ALL")
out["b_noop_expunge"] = b.cmd("NOOP")
out["b_after"] = b.cmd("FETCH 2 (UID FLAGS)")
out["b_append"] = b.append("INBOX", msg("message 4"))
out["a_noop"] = a.cmd("NOOP")
out["a_new"] = a.cmd("FETCH 3 (UID FLAGS)")
"#,
    ));
    assert_eq!(
        lines(&out, "a_store"),
        ["* 1 FETCH (UID 1 FLAGS (\\Flagged))", "OK"]
    );
    assert_eq!(
        lines(&out, "b_noop"),
        ["* 1 FETCH (UID 1 FLAGS (\\Flagged))", "OK"]
    );
    assert_eq!(lines(&out, "b_noop_again"), ["OK"]);
    assert_eq!(lines(&out, "a_expunge"), ["* 2 EXPUNGE", "OK"]);
    for key in ["b_fetch", "b_store", "b_search"] {
        let got = lines(&out, key);
        assert!(
            !got.iter().any(|l| l.ends_with(" EXPUNGE")),
            "{key}: {got:?}"
        );
        assert_eq!(got.last().map(String::as_str), Some("OK"), "{key}: {got:?}");
    }
    assert_eq!(lines(&out, "b_search"), ["* SEARCH 1 2 3", "OK"]);
    assert_eq!(lines(&out, "b_noop_expunge"), ["* 2 EXPUNGE", "OK"]);
    assert_eq!(
        lines(&out, "b_after"),
        ["* 2 FETCH (UID 3 FLAGS (\\Seen))", "OK"]
    );
    // RFC 3501 section 6.3.11: appending to the selected mailbox reports EXISTS at once.
    let b_append = lines(&out, "b_append");
    assert_eq!(b_append.len(), 2, "{b_append:?}");
    assert_eq!(b_append[0], "* 3 EXISTS");
    assert!(b_append[1].starts_with("OK [APPENDUID ") && b_append[1].ends_with(" 4]"));
    // B's STORE on its message 3 (UID 3) is message 2 for A, which saw the expunge.
    assert_eq!(
        lines(&out, "a_noop"),
        ["* 2 FETCH (UID 3 FLAGS (\\Seen))", "* 3 EXISTS", "OK"]
    );
    assert_eq!(lines(&out, "a_new"), ["* 3 FETCH (UID 4 FLAGS ())", "OK"]);
}

#[tokio::test]
async fn idle_reports_another_sessions_changes_without_a_command() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
a = Raw()
a.append("INBOX", msg("message 1"))
a.cmd("SELECT INBOX")
b = Raw()
b.cmd("SELECT INBOX")
tag = a.tag()
a.send(("%s IDLE\r\n" % tag).encode())
out["continuation"] = a.response()[:1]
b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
started = time.monotonic()
out["flags"] = a.response()
b.append("INBOX", msg("message 2"))
out["exists"] = a.response()
out["seconds"] = time.monotonic() - started
a.send(b"DONE\r\n")
out["done"] = a.until(tag)
"#,
    ));
    assert_eq!(out["continuation"], "+");
    assert_eq!(out["flags"], "* 1 FETCH (UID 1 FLAGS (\\Flagged))");
    assert_eq!(out["exists"], "* 2 EXISTS");
    // Well before the 30 s poll: the change notice woke the session.
    assert!(out["seconds"].as_f64().unwrap_or(99.0) < 10.0, "{out}");
    assert_eq!(lines(&out, "done"), ["OK"]);
}

#[tokio::test]
async fn malformed_and_unknown_commands_get_bad_and_the_session_continues() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
r.append("INBOX", msg("message 1"))
out["unknown"] = r.cmd("FROBNICATE")
out["star_tag"] = r.raw(b"* NOOP\r\n")
out["plus_tag"] = r.raw(b"+ NOOP\r\n")
out["empty"] = r.raw(b"\r\n")
out["not_selected"] = r.cmd("FETCH 1 (FLAGS)")
out["missing_argument"] = r.cmd("SELECT")
out["login_again"] = r.cmd('LOGIN "alice@example.test" "x"')
out["noop"] = r.cmd("NOOP")
r.cmd("SELECT INBOX")
out["bad_item"] = r.cmd("FETCH 1 (NOSUCHITEM)")
out["bad_store"] = r.cmd("STORE 1 +FLAGS")
out["bad_search"] = r.cmd("SEARCH FOO")
out["bad_uid"] = r.cmd("UID FROB 1")
out["bad_set"] = r.cmd("FETCH 0 (FLAGS)")
out["still_selected"] = r.cmd("FETCH 1 (UID)")
"#,
    ));
    assert_eq!(lines(&out, "unknown"), ["BAD"]);
    // No valid tag: an untagged BAD (RFC 3501 section 7.1.3).
    assert_eq!(out["star_tag"], "* BAD");
    assert_eq!(out["plus_tag"], "* BAD");
    assert_eq!(out["empty"], "* BAD");
    assert_eq!(lines(&out, "not_selected"), ["BAD"]);
    assert_eq!(lines(&out, "missing_argument"), ["BAD"]);
    assert_eq!(lines(&out, "login_again"), ["BAD"]);
    assert_eq!(lines(&out, "noop"), ["OK"]);
    for key in ["bad_item", "bad_store", "bad_search", "bad_uid", "bad_set"] {
        assert_eq!(lines(&out, key), ["BAD"], "{key}");
    }
    assert_eq!(lines(&out, "still_selected"), ["* 1 FETCH (UID 1)", "OK"]);
}

#[tokio::test]
async fn a_synchronizing_literal_over_the_limit_gets_toobig_before_its_data() {
    let (_db, access) = start_with(&[
        ("MAILCLUSTER_ACCESS__MAX_LITERAL_BYTES", "2048"),
        ("MAILCLUSTER_ACCESS__MAX_APPEND_BYTES", "65536"),
    ])
    .await;
    let out = access.python(&script(
        r#"
r = Raw(user=None)
r.s.settimeout(5)
r.send(b"a LOGIN {999999}\r\n")
out["login_literal"] = norm(r.response(), "a")
out["noop"] = r.cmd("NOOP")
out["login"] = r.literal('LOGIN "alice@example.test"', PW.encode())[-1][:2]
r.cmd("SELECT INBOX")
out["search_big"] = r.literal("SEARCH TEXT", b"x" * 3000)
out["search_small"] = r.literal("SEARCH TEXT", b"x" * 10)
# APPEND has its own, larger limit.
big = msg("big", body=("y" * 70 + "\r\n") * 60)
out["append_size"] = len(big)
out["append"] = r.append("INBOX", big)
out["after"] = r.cmd("FETCH 1 (RFC822.SIZE)")
out["append_big"] = r.literal("APPEND INBOX", b"z" * 70000)
out["after_big"] = r.cmd("NOOP")
# A non-synchronizing literal over the limit cannot be refused before it arrives: BYE.
n = Raw()
n.s.settimeout(5)
n.send(b"b SEARCH TEXT {3000+}\r\n" + b"x" * 3000 + b"\r\n")
out["nonsync"] = norm(n.response(), "b")
try:
    n.response()
    out["closed"] = False
except (EOFError, ConnectionError, ssl.SSLError):
    out["closed"] = True
"#,
    ));
    assert_eq!(out["login_literal"], "NO [TOOBIG]", "{out}");
    assert_eq!(lines(&out, "noop"), ["OK"]);
    assert_eq!(out["login"], "OK");
    assert_eq!(lines(&out, "search_big"), ["NO [TOOBIG]"]);
    assert_eq!(lines(&out, "search_small"), ["* SEARCH", "OK"]);
    let append = lines(&out, "append");
    assert!(out["append_size"].as_u64().unwrap_or(0) > 2048);
    assert_eq!(append.len(), 2, "{append:?}");
    assert_eq!(append[0], "* 1 EXISTS");
    assert!(append[1].starts_with("OK [APPENDUID "), "{append:?}");
    assert_eq!(
        lines(&out, "after"),
        [
            format!(
                "* 1 FETCH (RFC822.SIZE {})",
                out["append_size"].as_u64().unwrap_or(0)
            ),
            "OK".into()
        ]
    );
    // ... up to its own limit.
    assert_eq!(lines(&out, "append_big"), ["NO [TOOBIG]"]);
    assert_eq!(lines(&out, "after_big"), ["OK"]);
    assert_eq!(out["nonsync"], "* BYE");
    assert_eq!(out["closed"], true);
}

#[tokio::test]
async fn a_tag_without_a_command_gets_a_tagged_bad() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
out["tag_only"] = r.raw(b"lonely\r\n", "lonely")
out["noop"] = r.cmd("NOOP")
"#,
    ));
    // RFC 3501 section 7.1.3: the untagged BAD is for errors whose command cannot be
    // determined; here the tag is known and a client waits for its completion.
    assert_eq!(out["tag_only"], "BAD");
    assert_eq!(lines(&out, "noop"), ["OK"]);
}

/// A forwarded message: a text part and [`MULTI`] as a message/rfc822 part.
fn forward() -> String {
    format!(
        "From: Carol Danvers <carol@example.test>\r\n\
         To: alice@example.test\r\n\
         Subject: Fwd: Quarterly report\r\n\
         Date: Tue, 16 Jan 2024 08:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"OUTER\"\r\n\
         \r\n\
         --OUTER\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         See below.\r\n\
         \r\n\
         --OUTER\r\n\
         Content-Type: message/rfc822\r\n\
         \r\n\
         {MULTI}\r\n\
         --OUTER--\r\n"
    )
}

#[tokio::test]
async fn fetch_numbers_the_parts_of_an_attached_message() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "FORWARD = {}.encode()\n{}",
        serde_json::to_string(&forward()).expect("json"),
        r#"
r = Raw()
r.append("INBOX", FORWARD)
r.cmd("SELECT INBOX")
out["size"] = r.cmd("FETCH 1 (RFC822.SIZE)")
out["part1"] = r.cmd("FETCH 1 (BODY.PEEK[1])")
out["part2"] = r.cmd("FETCH 1 (BODY.PEEK[2])")
out["part2_header"] = r.cmd("FETCH 1 (BODY.PEEK[2.HEADER])")
out["part2_fields"] = r.cmd("FETCH 1 (BODY.PEEK[2.HEADER.FIELDS (SUBJECT)])")
out["part2_text"] = r.cmd("FETCH 1 (BODY.PEEK[2.TEXT])")
out["part2_1"] = r.cmd("FETCH 1 (BODY.PEEK[2.1])")
out["part2_2_mime"] = r.cmd("FETCH 1 (BODY.PEEK[2.2.MIME])")
out["bodystructure"] = r.cmd("FETCH 1 (BODYSTRUCTURE)")
"#
    )));
    let forward = forward();
    assert_eq!(
        lines(&out, "size"),
        [
            format!("* 1 FETCH (RFC822.SIZE {})", forward.len()),
            "OK".into()
        ]
    );
    let expect = |key: &str, section: &str, text: &str| {
        assert_eq!(
            lines(&out, key),
            [
                format!("* 1 FETCH (BODY[{section}] {})", lit(text)),
                "OK".into()
            ],
            "{key}"
        );
    };
    expect("part1", "1", "See below.\r\n");
    // RFC 3501 section 6.4.5: part 2 is the whole attached message; 2.HEADER / 2.TEXT its
    // header and body; 2.1 the first part of its multipart body.
    expect("part2", "2", MULTI);
    expect("part2_header", "2.HEADER", MULTI_HEADER);
    expect(
        "part2_fields",
        "2.HEADER.FIELDS (SUBJECT)",
        "Subject: Quarterly report\r\n\r\n",
    );
    expect("part2_text", "2.TEXT", &MULTI[MULTI_HEADER.len()..]);
    expect("part2_1", "2.1", MULTI_PART1);
    expect("part2_2_mime", "2.2.MIME", MULTI_PART2_MIME);
    let envelope = "(\"MON, 15 JAN 2024 10:00:00 +0000\" \"QUARTERLY REPORT\" \
         ((\"ALICE EXAMPLE\" NIL \"ALICE\" \"EXAMPLE.TEST\")) \
         ((\"ALICE EXAMPLE\" NIL \"ALICE\" \"EXAMPLE.TEST\")) \
         ((\"ALICE EXAMPLE\" NIL \"ALICE\" \"EXAMPLE.TEST\")) \
         ((\"BOB BUILDER\" NIL \"BOB\" \"EXAMPLE.TEST\")) \
         ((NIL NIL \"CAROL\" \"EXAMPLE.TEST\")) NIL NIL \"<REPORT-1@EXAMPLE.TEST>\")";
    let inner = format!(
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"7BIT\" {} 2 NIL NIL NIL NIL)\
         (\"APPLICATION\" \"PDF\" (\"NAME\" \"REPORT.PDF\") NIL NIL \"BASE64\" {} NIL \
         (\"ATTACHMENT\" (\"FILENAME\" \"REPORT.PDF\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"XYZ\") NIL NIL NIL)",
        MULTI_PART1.len(),
        MULTI_PART2.len()
    );
    let structure = format!(
        "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" {} {envelope} {inner} {} NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"OUTER\") NIL NIL NIL))",
        MULTI.len(),
        MULTI.matches("\r\n").count()
    );
    let got: Vec<String> = lines(&out, "bodystructure")
        .iter()
        .map(|l| l.to_ascii_uppercase())
        .collect();
    assert_eq!(got, [structure, "OK".into()]);
}

#[tokio::test]
async fn folded_header_fields_are_fetched_whole_and_searched_unfolded() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
FOLDED = (b"From: Carol Danvers <carol@example.test>\r\nTo: alice@example.test\r\n"
          b"Subject: Quarterly\r\n report for the board\r\nX-Long: part one\r\n\tpart two\r\n"
          b"Date: Fri, 01 Mar 2024 09:00:00 +0000\r\n\r\nBody.\r\n")
r = Raw()
r.append("INBOX", FOLDED)
r.append("INBOX", msg("Quarterly"))
r.cmd("SELECT INBOX")
out["fields"] = r.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (X-LONG SUBJECT)])")
out["subject"] = r.cmd('SEARCH SUBJECT "Quarterly report"')
out["header"] = r.cmd('SEARCH HEADER X-Long "part two"')
"#,
    ));
    assert_eq!(
        lines(&out, "fields"),
        [
            format!(
                "* 1 FETCH (BODY[HEADER.FIELDS (X-LONG SUBJECT)] {})",
                lit(
                    "Subject: Quarterly\r\n report for the board\r\nX-Long: part one\r\n\tpart two\r\n\r\n"
                )
            ),
            "OK".into()
        ]
    );
    assert_eq!(lines(&out, "subject"), ["* SEARCH 1", "OK"]);
    assert_eq!(lines(&out, "header"), ["* SEARCH 1", "OK"]);
}

#[tokio::test]
async fn sort_by_date_uses_the_internal_date_when_the_date_header_is_missing_or_broken() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
NO_DATE = b"From: amy@example.test\r\nSubject: no date\r\n\r\nBody.\r\n"
BROKEN = b"From: amy@example.test\r\nSubject: broken date\r\nDate: sometime soon\r\n\r\nBody.\r\n"
r = Raw()
r.append("INBOX", msg("tenth", date="Wed, 10 Jan 2024 10:00:00 +0000"), "", "01-Feb-2024 10:00:00 +0000")
r.append("INBOX", NO_DATE, "", "05-Jan-2024 10:00:00 +0000")
r.append("INBOX", msg("eighth", date="Mon, 08 Jan 2024 10:00:00 +0000"), "", "02-Feb-2024 10:00:00 +0000")
r.append("INBOX", BROKEN, "", "20-Jan-2024 10:00:00 +0000")
r.cmd("SELECT INBOX")
out["date"] = r.cmd("SORT (DATE) UTF-8 ALL")
"#,
    ));
    // RFC 5256 section 2.2: without a usable Date header the internal date is the sent date.
    assert_eq!(lines(&out, "date"), ["* SORT 2 3 1 4", "OK"]);
}

#[tokio::test]
async fn fetch_rfc822_sets_seen_but_rfc822_header_and_macros_do_not() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_TWO}{}",
        r#"
r.cmd("STORE 1 -FLAGS.SILENT (\\Seen)")
out["header"] = r.cmd("FETCH 2 (RFC822.HEADER)")
out["all"] = r.cmd("FETCH 2 ALL")
out["full"] = r.cmd("FETCH 2 FULL")
out["flags"] = r.cmd("FETCH 1:2 (FLAGS)")
out["rfc822"] = r.cmd("FETCH 2 (RFC822)")
out["rfc822_text"] = r.cmd("FETCH 1 (RFC822.TEXT)")
out["both"] = r.cmd("FETCH 1:2 (FLAGS)")
"#
    )));
    assert_eq!(
        lines(&out, "header"),
        [
            format!("* 2 FETCH (RFC822.HEADER {})", lit(MULTI_HEADER)),
            "OK".into()
        ]
    );
    let envelope = "(\"Mon, 15 Jan 2024 10:00:00 +0000\" \"Quarterly report\" \
         ((\"Alice Example\" NIL \"alice\" \"example.test\")) \
         ((\"Alice Example\" NIL \"alice\" \"example.test\")) \
         ((\"Alice Example\" NIL \"alice\" \"example.test\")) \
         ((\"Bob Builder\" NIL \"bob\" \"example.test\")) \
         ((NIL NIL \"carol\" \"example.test\")) NIL NIL \"<report-1@example.test>\")";
    let common = format!(
        "FLAGS () INTERNALDATE \"15-Jan-2024 10:05:00 +0000\" RFC822.SIZE {} ENVELOPE {envelope}",
        MULTI.len()
    );
    // RFC 3501 section 6.4.5: ALL = (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE), FULL adds BODY.
    assert_eq!(
        lines(&out, "all"),
        [format!("* 2 FETCH ({common})"), "OK".into()]
    );
    let full = lines(&out, "full");
    assert!(
        full[0].starts_with(&format!("* 2 FETCH ({common} BODY ((")),
        "{full:?}"
    );
    assert_eq!(
        lines(&out, "flags"),
        [
            "* 1 FETCH (FLAGS (\\Flagged))",
            "* 2 FETCH (FLAGS ())",
            "OK"
        ]
    );
    assert_eq!(
        lines(&out, "rfc822"),
        [
            format!("* 2 FETCH (RFC822 {} FLAGS (\\Seen))", lit(MULTI)),
            "OK".into()
        ]
    );
    let simple_header = SIMPLE.find("\r\n\r\n").expect("header end") + 4;
    assert_eq!(
        lines(&out, "rfc822_text"),
        [
            format!(
                "* 1 FETCH (RFC822.TEXT {} FLAGS (\\Flagged \\Seen))",
                lit(&SIMPLE[simple_header..])
            ),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "both"),
        [
            "* 1 FETCH (FLAGS (\\Flagged \\Seen))",
            "* 2 FETCH (FLAGS (\\Seen))",
            "OK"
        ]
    );
}

#[tokio::test]
async fn moving_several_messages_reports_one_copyuid_and_every_expunge() {
    let (_db, access) = start().await;
    let out = access.python(&script(&format!(
        "{SEED_COPY}{}",
        r#"
r.append("INBOX", msg("fourth"))
r.cmd("NOOP")
out["move"] = r.cmd("MOVE 1,3:4 Archive")
out["left"] = r.cmd("FETCH 1:* (UID)")
out["copy"] = r.cmd("UID COPY 2,9 Archive")
"#
    )));
    let validity = out["archive_validity"].as_u64().expect("validity");
    let moved = lines(&out, "move");
    assert_eq!(moved[0], format!("* OK [COPYUID {validity} 1,3:4 1:3]"));
    assert_eq!(moved.last().map(String::as_str), Some("OK"));
    assert_eq!(
        apply_expunges(vec![1, 2, 3, 4], &moved[1..moved.len() - 1]),
        [2]
    );
    assert_eq!(moved.len(), 5, "{moved:?}");
    assert_eq!(lines(&out, "left"), ["* 1 FETCH (UID 2)", "OK"]);
    assert_eq!(
        lines(&out, "copy"),
        [format!("OK [COPYUID {validity} 2 4]")]
    );
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
r.append("INBOX", msg("message 1"))
r.cmd("SELECT INBOX")
body = msg("message 2")
r.send(b"P1 NOOP\r\nP2 FETCH 1 (UID)\r\nP3 APPEND INBOX {%d+}\r\n%s\r\nP4 STORE 1:2 +FLAGS (\\Seen)\r\nP5 SEARCH SEEN\r\n" % (len(body), body))
got = []
while True:
    line = r.response()
    tag = line.split(" ")[0]
    got.append(norm(line, tag) if tag == "*" else tag + " " + norm(line, tag))
    if tag == "P5":
        break
out["got"] = got
"#,
    ));
    let got = lines(&out, "got");
    let appended = got
        .iter()
        .find(|l| l.starts_with("P3 OK [APPENDUID "))
        .cloned()
        .unwrap_or_else(|| format!("no P3 OK in {got:?}"));
    assert_eq!(
        got,
        [
            "P1 OK".to_string(),
            "* 1 FETCH (UID 1)".into(),
            "P2 OK".into(),
            "* 2 EXISTS".into(),
            appended,
            "* 1 FETCH (UID 1 FLAGS (\\Seen))".into(),
            "* 2 FETCH (UID 2 FLAGS (\\Seen))".into(),
            "P4 OK".into(),
            "* SEARCH 1 2".into(),
            "P5 OK".into(),
        ]
    );
}

#[tokio::test]
async fn a_failed_select_leaves_no_mailbox_selected() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
r.append("INBOX", msg("message 1"))
r.cmd("SELECT INBOX")
out["select_missing"] = r.cmd("SELECT Nope")
out["fetch"] = r.cmd("FETCH 1 (UID)")
out["examine_missing"] = r.cmd("EXAMINE Nope")
"#,
    ));
    // RFC 3501 section 6.3.1: a failed SELECT leaves the session in the authenticated state.
    assert_eq!(lines(&out, "select_missing"), ["NO [NONEXISTENT]"]);
    assert_eq!(lines(&out, "fetch"), ["BAD"]);
    assert_eq!(lines(&out, "examine_missing"), ["NO [NONEXISTENT]"]);
}

#[tokio::test]
async fn inbox_is_found_in_any_case() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
out["append"] = r.append("inbox", msg("message 1"))[-1][:2]
out["status"] = r.cmd("STATUS iNbOx (MESSAGES)")
out["select"] = r.cmd("SELECT Inbox")[-1]
r.cmd("CREATE Archive")
r.cmd("SELECT Archive")
r.append("Archive", msg("message 2"))
out["copy"] = r.cmd("COPY 1 inbox")[-1][:2]
out["count"] = r.cmd("STATUS INBOX (MESSAGES)")
"#,
    ));
    // RFC 3501 section 5.1: INBOX is case-insensitive.
    assert_eq!(out["append"], "OK", "{out}");
    assert_eq!(
        lines(&out, "status"),
        ["* STATUS \"INBOX\" (MESSAGES 1)", "OK"]
    );
    assert_eq!(out["select"], "OK [READ-WRITE]");
    assert_eq!(out["copy"], "OK", "{out}");
    assert_eq!(
        lines(&out, "count"),
        ["* STATUS \"INBOX\" (MESSAGES 2)", "OK"]
    );
}

#[tokio::test]
async fn uid_ranges_ending_in_star_include_the_last_message() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
for n in range(1, 4):
    r.append("INBOX", msg("message %d" % n))
r.cmd("SELECT INBOX")
out["fetch"] = r.cmd("UID FETCH 10:* (FLAGS)")
out["search"] = r.cmd("UID SEARCH UID 10:*")
out["store"] = r.cmd("UID STORE 10:* +FLAGS (\\Seen)")
out["absent"] = r.cmd("UID FETCH 10 (FLAGS)")
"#,
    ));
    // RFC 3501 section 6.4.8: "a UID range of 559:* always includes the UID of the last
    // message in the mailbox, even if 559 is higher than any assigned UID value".
    assert_eq!(lines(&out, "fetch"), ["* 3 FETCH (UID 3 FLAGS ())", "OK"]);
    assert_eq!(lines(&out, "search"), ["* SEARCH 3", "OK"]);
    assert_eq!(
        lines(&out, "store"),
        ["* 3 FETCH (UID 3 FLAGS (\\Seen))", "OK"]
    );
    assert_eq!(lines(&out, "absent"), ["OK"]);
}

#[tokio::test]
async fn sent_date_keys_use_the_date_as_written_in_the_header() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
# 00:30 on 2 March at +0100 is 23:30 on 1 March in UTC.
r.append("INBOX", msg("east", date="Sat, 02 Mar 2024 00:30:00 +0100"))
# 23:30 on 1 March at -0500 is 04:30 on 2 March in UTC.
r.append("INBOX", msg("west", date="Fri, 01 Mar 2024 23:30:00 -0500"))
r.cmd("SELECT INBOX")
out["on_2"] = r.cmd("SEARCH SENTON 2-Mar-2024")
out["on_1"] = r.cmd("SEARCH SENTON 1-Mar-2024")
out["before_2"] = r.cmd("SEARCH SENTBEFORE 2-Mar-2024")
out["since_2"] = r.cmd("SEARCH SENTSINCE 2-Mar-2024")
"#,
    ));
    // RFC 3501 section 6.4.4: SENTON/SENTBEFORE/SENTSINCE compare the Date header's date
    // "disregarding time and timezone", i.e. the date as written.
    let got: Vec<Vec<String>> = ["on_2", "on_1", "before_2", "since_2"]
        .iter()
        .map(|key| lines(&out, key))
        .collect();
    assert_eq!(
        got,
        [
            ["* SEARCH 1", "OK"],
            ["* SEARCH 2", "OK"],
            ["* SEARCH 2", "OK"],
            ["* SEARCH 1", "OK"]
        ],
        "SENTON 2-Mar, SENTON 1-Mar, SENTBEFORE 2-Mar, SENTSINCE 2-Mar"
    );
}

#[tokio::test]
async fn sort_subject_strips_reply_forward_and_list_decorations() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
for subject in ["[PATCH] zebra", "yak (fwd)", "[Fwd: xylophone]", "Re: re: Fwd: walrus", "=?UTF-8?Q?vole?="]:
    r.append("INBOX", msg(subject))
r.cmd("SELECT INBOX")
out["subject"] = r.cmd("SORT (SUBJECT) UTF-8 ALL")
"#,
    ));
    // RFC 5256 section 2.1: base subjects zebra, yak, xylophone, walrus, vole.
    assert_eq!(lines(&out, "subject"), ["* SORT 5 4 3 2 1", "OK"]);
}

#[tokio::test]
async fn envelope_shows_groups_sender_reply_to_and_missing_fields() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
M = (b'From: "Doe, Jane" <jane@example.test>\r\n'
     b'Sender: Secretary <sec@example.test>\r\n'
     b'Reply-To: replies@example.test\r\n'
     b'To: undisclosed-recipients:;\r\n'
     b'Cc: Team: ann@example.test, "Bo B" <bo@example.test>;\r\n'
     b'Subject: groups\r\n'
     b'In-Reply-To: <prev@example.test>\r\n'
     b'Message-ID: <env@example.test>\r\n\r\nBody.\r\n')
r = Raw()
r.append("INBOX", M)
r.append("INBOX", b"X-Nothing: here\r\n\r\nBody.\r\n")
r.cmd("SELECT INBOX")
out["envelope"] = r.cmd("FETCH 1:2 (ENVELOPE)")
"#,
    ));
    // RFC 3501 section 7.4.2: a group is an address with NIL host (start: the group name in
    // the mailbox field; end: all NIL); Sender and Reply-To as given; no Date: NIL.
    assert_eq!(
        lines(&out, "envelope"),
        [
            "* 1 FETCH (ENVELOPE (NIL \"groups\" ((\"Doe, Jane\" NIL \"jane\" \"example.test\")) \
             ((\"Secretary\" NIL \"sec\" \"example.test\")) \
             ((NIL NIL \"replies\" \"example.test\")) \
             ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) \
             ((NIL NIL \"Team\" NIL)(NIL NIL \"ann\" \"example.test\")(\"Bo B\" NIL \"bo\" \"example.test\")(NIL NIL NIL NIL)) \
             NIL \"<prev@example.test>\" \"<env@example.test>\"))",
            "* 2 FETCH (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL))",
            "OK"
        ]
    );
}

#[tokio::test]
async fn bodystructure_carries_id_description_disposition_language_location_and_md5() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
M = (b'From: a@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n'
     b'Content-Type: multipart/alternative; boundary="ALT"\r\n\r\n'
     b'--ALT\r\n'
     b'Content-Type: text/plain; charset="iso-8859-1"; format=flowed\r\n'
     b'Content-Transfer-Encoding: quoted-printable\r\n'
     b'Content-ID: <plain@example.test>\r\n'
     b'Content-Description: The plain version\r\n'
     b'Content-Language: de\r\n\r\n'
     b'Gr=FC=DFe\r\n\r\n'
     b'--ALT\r\n'
     b'Content-Type: text/html; charset=utf-8\r\n'
     b'Content-Disposition: inline; filename="body.html"\r\n'
     b'Content-Location: http://example.test/body.html\r\n'
     b'Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\n'
     b'<p>Hi</p>\r\n\r\n'
     b'--ALT--\r\n')
r = Raw()
r.append("INBOX", M)
r.cmd("SELECT INBOX")
out["structure"] = r.cmd("FETCH 1 (BODYSTRUCTURE)")
out["body"] = r.cmd("FETCH 1 (BODY)")
"#,
    ));
    let upper = |key: &str| -> Vec<String> {
        lines(&out, key)
            .iter()
            .map(|l| l.to_ascii_uppercase())
            .collect()
    };
    let structure = upper("structure");
    // body-fld-lang may be a string or a list of strings (RFC 3501 section 9).
    let expected = |lang: &str| {
        format!(
            "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"ISO-8859-1\" \"FORMAT\" \"FLOWED\") \
             \"<PLAIN@EXAMPLE.TEST>\" \"THE PLAIN VERSION\" \"QUOTED-PRINTABLE\" 11 1 NIL NIL {lang} NIL)\
             (\"TEXT\" \"HTML\" (\"CHARSET\" \"UTF-8\") NIL NIL \"7BIT\" 11 1 \"Q2HLY2SGSW50ZWDYAXR5IQ==\" \
             (\"INLINE\" (\"FILENAME\" \"BODY.HTML\")) NIL \"HTTP://EXAMPLE.TEST/BODY.HTML\") \
             \"ALTERNATIVE\" (\"BOUNDARY\" \"ALT\") NIL NIL NIL))"
        )
    };
    assert!(
        structure == [expected("\"DE\""), "OK".into()]
            || structure == [expected("(\"DE\")"), "OK".into()],
        "{structure:?}\nexpected {}",
        expected("\"DE\"")
    );
    assert_eq!(
        upper("body"),
        [
            "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"ISO-8859-1\" \"FORMAT\" \"FLOWED\") \
             \"<PLAIN@EXAMPLE.TEST>\" \"THE PLAIN VERSION\" \"QUOTED-PRINTABLE\" 11 1)\
             (\"TEXT\" \"HTML\" (\"CHARSET\" \"UTF-8\") NIL NIL \"7BIT\" 11 1) \"ALTERNATIVE\"))",
            "OK"
        ]
    );
}

#[tokio::test]
async fn copy_into_the_selected_mailbox_shows_up_as_exists() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
r.append("INBOX", msg("message 1"), "\\Flagged")
r.cmd("SELECT INBOX")
out["copy"] = r.cmd("COPY 1 INBOX")
out["noop"] = r.cmd("NOOP")
out["flags"] = r.cmd("FETCH 1:* (UID FLAGS)")
"#,
    ));
    let copy = lines(&out, "copy");
    let tagged = copy.last().cloned().unwrap_or_default();
    assert!(
        tagged.starts_with("OK [COPYUID ") && tagged.ends_with(" 1 2]"),
        "{copy:?}"
    );
    // The new message is announced by the COPY itself or by the next NOOP, exactly once.
    let exists = copy
        .iter()
        .chain(lines(&out, "noop").iter())
        .filter(|l| *l == "* 2 EXISTS")
        .count();
    assert_eq!(exists, 1, "{out}");
    assert_eq!(
        lines(&out, "flags"),
        [
            "* 1 FETCH (UID 1 FLAGS (\\Flagged))",
            "* 2 FETCH (UID 2 FLAGS (\\Flagged))",
            "OK"
        ]
    );
}

#[tokio::test]
async fn search_recent_new_old_and_the_remaining_flag_keys() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
r.append("INBOX", msg("one"), "\\Answered \\Seen")
r.append("INBOX", msg("two"), "\\Draft \\Deleted")
r.append("INBOX", msg("three"), "")
sel = r.cmd("SELECT INBOX")
out["recent_count"] = [l for l in sel if l.endswith(" RECENT")]
for key in ["RECENT", "NEW", "OLD", "ANSWERED", "UNANSWERED", "DRAFT", "UNDRAFT", "DELETED", "UNDELETED"]:
    out[key] = r.cmd("SEARCH " + key)
"#,
    ));
    // The server keeps no \Recent messages ("* 0 RECENT"), so NEW (RECENT UNSEEN) is empty
    // and OLD (NOT RECENT) is everything.
    assert_eq!(lines(&out, "recent_count"), ["* 0 RECENT"]);
    for (key, numbers) in [
        ("RECENT", ""),
        ("NEW", ""),
        ("OLD", " 1 2 3"),
        ("ANSWERED", " 1"),
        ("UNANSWERED", " 2 3"),
        ("DRAFT", " 2"),
        ("UNDRAFT", " 1 3"),
        ("DELETED", " 2"),
        ("UNDELETED", " 1 3"),
    ] {
        assert_eq!(
            lines(&out, key),
            [format!("* SEARCH{numbers}"), "OK".into()],
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_second_session_gets_flag_changes_numbered_after_the_expunges_before_them() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
a = Raw()
for n in range(1, 6):
    a.append("INBOX", msg("message %d" % n))
a.cmd("SELECT INBOX")
b = Raw()
b.cmd("SELECT INBOX")
a.cmd("STORE 5 +FLAGS.SILENT (\\Flagged)")
a.cmd("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
a.cmd("EXPUNGE")
out["b_noop"] = b.cmd("NOOP")
out["b_uids"] = b.cmd("FETCH 1:* (UID)")
"#,
    ));
    let noop = lines(&out, "b_noop");
    // UIDs 1 and 3 are gone; UID 5 (message 5 before) is message 3 once both are applied.
    let expunges: Vec<String> = noop
        .iter()
        .filter(|l| l.ends_with(" EXPUNGE"))
        .cloned()
        .collect();
    assert_eq!(apply_expunges(vec![1, 2, 3, 4, 5], &expunges), [2, 4, 5]);
    assert_eq!(
        noop,
        [
            "* 3 EXPUNGE",
            "* 1 EXPUNGE",
            "* 3 FETCH (UID 5 FLAGS (\\Flagged))",
            "OK"
        ]
    );
    assert_eq!(
        lines(&out, "b_uids"),
        [
            "* 1 FETCH (UID 2)",
            "* 2 FETCH (UID 4)",
            "* 3 FETCH (UID 5)",
            "OK"
        ]
    );
}

#[tokio::test]
async fn search_body_matches_the_decoded_text_of_encoded_parts() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
M = (b'From: a@example.test\r\nSubject: encoded\r\nMIME-Version: 1.0\r\n'
     b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
     b'--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n'
     b'SGVsbG8gZnJvbSB0aGUgbW91bnRhaW5zCg==\r\n\r\n'
     b'--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
     b"Un caf=C3=A9 au lait, s'il vo=\r\n"
     b'us pla=C3=AEt\r\n\r\n'
     b'--B--\r\n')
r = Raw()
r.append("INBOX", M)
r.append("INBOX", msg("plain", body="Nothing to see.\r\n"))
r.cmd("SELECT INBOX")
out["base64"] = r.cmd('SEARCH BODY "hello from the mountains"')
out["qp"] = r.literal("SEARCH CHARSET UTF-8 BODY", "café au lait".encode("utf-8"))
out["soft_break"] = r.cmd('SEARCH BODY "s\'il vous"')
out["text"] = r.cmd("SEARCH TEXT mountains")
"#,
    ));
    // RFC 3501 section 6.4.4: BODY searches the body text, i.e. the decoded content of
    // every text part.
    let got: Vec<Vec<String>> = ["base64", "qp", "soft_break", "text"]
        .iter()
        .map(|key| lines(&out, key))
        .collect();
    assert_eq!(
        got,
        [
            ["* SEARCH 1", "OK"],
            ["* SEARCH 1", "OK"],
            ["* SEARCH 1", "OK"],
            ["* SEARCH 1", "OK"]
        ],
        "BODY (base64 part 1), BODY (quoted-printable part 2), BODY across a soft line break, TEXT"
    );
}

#[tokio::test]
async fn append_accepts_a_space_padded_day_and_refuses_a_malformed_date() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
out["padded"] = r.append("INBOX", msg("padded"), None, " 1-Mar-2024 08:00:00 +0000")
out["malformed"] = r.append("INBOX", msg("bad"), None, "31-Foo-2024 08:00:00 +0000")
out["noop"] = r.cmd("NOOP")
r.cmd("SELECT INBOX")
out["date"] = r.cmd("FETCH 1:* (INTERNALDATE)")
out["logout"] = r.cmd("LOGOUT")
"#,
    ));
    // RFC 3501 section 9: date-day-fixed = (SP DIGIT) / 2DIGIT.
    let padded = lines(&out, "padded");
    assert!(padded[0].starts_with("OK [APPENDUID "), "{padded:?}");
    assert_eq!(lines(&out, "malformed"), ["BAD"]);
    assert_eq!(lines(&out, "noop"), ["OK"]);
    assert_eq!(
        lines(&out, "date"),
        [
            "* 1 FETCH (INTERNALDATE \"01-Mar-2024 08:00:00 +0000\")",
            "OK"
        ]
    );
    assert_eq!(lines(&out, "logout"), ["* BYE", "OK"]);
}

#[tokio::test]
async fn select_with_the_condstore_parameter_enables_modseq_in_responses() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
r = Raw()
r.append("INBOX", msg("message 1"))
out["select"] = r.cmd("SELECT INBOX (CONDSTORE)")
out["store"] = r.cmd("STORE 1 +FLAGS (\\Seen)")
out["fetch"] = r.cmd("FETCH 1 (MODSEQ)")
"#,
    ));
    let select = lines(&out, "select");
    assert!(
        select.iter().any(|l| l.starts_with("* OK [HIGHESTMODSEQ ")),
        "{select:?}"
    );
    assert_eq!(select.last().map(String::as_str), Some("OK [READ-WRITE]"));
    let store = lines(&out, "store");
    let modseq = modseqs(&store);
    assert_eq!(modseq.len(), 1, "{store:?}");
    assert_eq!(
        store,
        [
            format!("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ ({}))", modseq[0].1),
            "OK".into()
        ]
    );
    assert_eq!(
        lines(&out, "fetch"),
        [format!("* 1 FETCH (MODSEQ ({}))", modseq[0].1), "OK".into()]
    );
}
