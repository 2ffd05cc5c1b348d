//! Messages shared by the tests, each a shape a server meets every day.

/// The APPEND example message of RFC 3501 section 6.3.11.
pub(super) const SIMPLE: &[u8] = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.COM>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu\r\n\
Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

pub(super) const ALTERNATIVE: &[u8] = b"From: a@example.com\r\n\
To: b@example.com\r\n\
Subject: alt\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Hi =E2=98=BA\r\n\
--XX\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hi</p>\r\n\
--XX--\r\n\
epilogue\r\n";

pub(super) const MIXED: &[u8] = b"From: \"Doe, Jane\" <jane@example.com>\r\n\
To: bob@example.com\r\n\
Subject: report\r\n\
Message-ID: <m1@example.com>\r\n\
Content-Type: multipart/mixed; boundary=outer\r\n\
\r\n\
--outer\r\n\
Content-Type: text/plain\r\n\
\r\n\
See attached.\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"r.pdf\"\r\n\
Content-Disposition: attachment; filename=\"r.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-ID: <pdf1@example.com>\r\n\
Content-Description: The report\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
Content-Disposition: inline\r\n\
\r\n\
From: bob@example.com\r\n\
Subject: original\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
Content-Language: en, de\r\n\
\r\n\
orig text\r\n\
line two\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
Content-Location: http://example.com/x.html\r\n\
\r\n\
<b>orig</b>\r\n\
--inner--\r\n\
--outer--\r\n";

pub(super) const ENCODED: &[u8] =
    b"From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@example.dk>\r\n\
To: undisclosed-recipients:;\r\n\
Cc: Friends: \"Ann\" <ann@example.org>, ben@example.org (Ben);\r\n\
Subject: =?utf-8?B?w6lsw6h2ZQ==?=\r\n  report\r\n\
Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n\
\r\n\
body\r\n";
