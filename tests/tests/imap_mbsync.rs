//! A real sync client: mbsync (isync) syncs a mailbox both ways with the access service over
//! IMAPS: server → Maildir (messages, folders, flags), Maildir → server (flags, deletions,
//! a new message), and a server-side flag change back down.

use mc_tests::TestDatabase;
use mc_tests::access::AccessProcess;
use mc_tests::smtp::{PASSWORD, seed_directory};
use std::path::Path;
use std::process::Command;

fn mbsync(config: &Path) -> String {
    let output = Command::new("mbsync")
        .arg("-c")
        .arg(config)
        .arg("-a")
        .output()
        .expect("run mbsync (apt package isync; ops/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "mbsync failed:\n{text}");
    text
}

/// Maildir file names of a folder (cur and new), sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for sub in ["cur", "new"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for entry in entries.flatten() {
                names.push(format!("{sub}/{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    names.sort();
    names
}

/// The Maildir flags of a file name (`...:2,FS` → "FS").
fn flags(name: &str) -> String {
    name.rsplit_once(":2,")
        .map(|(_, f)| f.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn mbsync_syncs_a_mailbox_both_ways() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let access = AccessProcess::start(&db, &mc_testkit::unique_prefix("mbsync"), &[]);
    let seeded = access.python(
        r#"
import imaplib, json, os, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["IMAPS_PORT"]), ssl_context=ctx)
m.login("alice@example.test", os.environ["PASSWORD"])
for i in range(3):
    m.append("INBOX", None, None, ("Subject: inbox %d\r\nMessage-ID: <in%d@test>\r\n\r\nbody %d\r\n" % (i, i, i)).encode())
m.create("Archive")
m.append("Archive", "(\\Seen)", None, b"Subject: archived\r\nMessage-ID: <ar0@test>\r\n\r\nold\r\n")
print(json.dumps({"ok": True}))
"#,
    );
    assert_eq!(seeded["ok"], true);

    let home = tempfile::tempdir().expect("tempdir");
    let maildir = home.path().join("mail");
    std::fs::create_dir_all(&maildir).expect("maildir");
    let config = home.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount test
Host 127.0.0.1
Port {port}
User alice@example.test
Pass \"{PASSWORD}\"
SSLType IMAPS
CertificateFile {cert}

IMAPStore remote
Account test

MaildirStore local
Path {dir}/
Inbox {dir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
",
            port = access.imaps_port,
            cert = access.cert.display(),
            dir = maildir.display()
        ),
    )
    .expect("write mbsyncrc");

    // Server → local.
    mbsync(&config);
    let inbox = maildir.join("INBOX");
    let archive = maildir.join("Archive");
    let inbox_files = files(&inbox);
    assert_eq!(inbox_files.len(), 3, "{inbox_files:?}");
    let archive_files = files(&archive);
    assert_eq!(archive_files.len(), 1, "{archive_files:?}");
    assert!(flags(&archive_files[0]).contains('S'), "{archive_files:?}");
    for folder in ["Sent", "Drafts", "Trash", "Junk"] {
        assert!(
            maildir.join(folder).is_dir(),
            "{folder} was not created locally"
        );
    }

    // Local → server: read one, delete one, add one to Archive.
    let read = inbox_files[0].clone();
    let read_path = inbox.join(&read);
    let seen_name = if read.contains(":2,") {
        format!(
            "cur/{}S",
            read.trim_start_matches("cur/").trim_start_matches("new/")
        )
    } else {
        format!(
            "cur/{}:2,S",
            read.trim_start_matches("new/").trim_start_matches("cur/")
        )
    };
    std::fs::rename(&read_path, inbox.join(&seen_name)).expect("mark seen");
    std::fs::remove_file(inbox.join(&inbox_files[1])).expect("delete locally");
    std::fs::write(
        archive.join("new").join("1700000000.local.host"),
        "Subject: written locally\r\nMessage-ID: <local@test>\r\n\r\nfrom the maildir\r\n",
    )
    .expect("new local message");
    mbsync(&config);

    let server = access.python(
        r#"
import imaplib, json, os, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["IMAPS_PORT"]), ssl_context=ctx)
m.login("alice@example.test", os.environ["PASSWORD"])
out = {}
typ, data = m.select("INBOX")
out["inbox_exists"] = int(data[0])
out["inbox_flags"] = [x.decode() for x in m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1] if isinstance(x, bytes)]
out["inbox_seen"] = m.search(None, "SEEN")[1][0].decode()
out["inbox_subjects"] = [x[1].decode().strip() for x in m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1] if isinstance(x, tuple)]
m.select("Archive")
out["archive_subjects"] = sorted(x[1].decode().strip() for x in m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1] if isinstance(x, tuple))
m.select("INBOX")
m.store("1", "+FLAGS", "(\\Flagged)")
print(json.dumps(out))
"#,
    );
    assert_eq!(server["inbox_exists"], 2, "{server}");
    assert_eq!(
        server["inbox_seen"]
            .as_str()
            .map(|s| s.split_whitespace().count()),
        Some(1),
        "{server}"
    );
    assert_eq!(
        server["archive_subjects"],
        serde_json::json!(["Subject: archived", "Subject: written locally"]),
        "{server}"
    );

    // Server → local again: the flag set on the server reaches the Maildir.
    mbsync(&config);
    let flagged: Vec<String> = files(&inbox)
        .into_iter()
        .filter(|name| flags(name).contains('F'))
        .collect();
    assert_eq!(flagged.len(), 1, "{:?}", files(&inbox));
    assert_eq!(files(&inbox).len(), 2);
    assert_eq!(files(&archive).len(), 2);
}
