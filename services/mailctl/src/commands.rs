//! The command tree and what each command sends.

use crate::client::{Client, Failure, segment};
use crate::output;
use crate::quota::parse_size;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::io::BufRead;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mailctl",
    version,
    about = "Manage a mailcluster through its admin API",
    after_help = "Exit status: 0 ok, 1 refused by the API, 2 bad usage or input, 69 API unreachable."
)]
pub struct Cli {
    /// Admin API base URL.
    #[arg(
        long,
        global = true,
        env = "MAILCTL_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Admin API token.
    #[arg(long, global = true, env = "MAILCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the admin API token.
    #[arg(long, global = true, env = "MAILCTL_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Noun,
}

#[derive(Subcommand)]
enum Noun {
    /// Hosted domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Accounts (mailboxes that can log in).
    #[command(subcommand)]
    Account(AccountCmd),
    /// Aliases (one address redirected to one target).
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Distribution lists.
    #[command(subcommand)]
    List(ListCmd),
    /// IP ranges: who may connect, relay, and must authenticate.
    #[command(subcommand)]
    Iprange(IpRangeCmd),
    /// Apply pending database migrations (connects to PostgreSQL directly: --config,
    /// MAILCLUSTER_CONFIG or MAILCLUSTER_DATABASE__URL).
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DomainCmd {
    Add {
        name: String,
    },
    List,
    Show {
        name: String,
    },
    /// Remove a domain; refused while it holds accounts, aliases or lists unless --force.
    Remove {
        name: String,
        #[arg(long)]
        force: bool,
    },
    Enable {
        name: String,
    },
    Disable {
        name: String,
    },
    /// Extra names of a domain.
    #[command(subcommand)]
    Alias(DomainAliasCmd),
    /// The address that receives mail for unknown local parts.
    #[command(subcommand, name = "catch-all")]
    CatchAll(CatchAllCmd),
}

#[derive(Subcommand)]
enum DomainAliasCmd {
    Add { domain: String, alias: String },
    Remove { domain: String, alias: String },
}

#[derive(Subcommand)]
enum CatchAllCmd {
    Set { domain: String, address: String },
    Clear { domain: String },
}

#[derive(Args)]
struct PasswordArgs {
    /// The password (visible in the process list; prefer --password-stdin on shared hosts).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum AdminLevel {
    User,
    Domain,
    Server,
}

#[derive(Subcommand)]
enum AccountCmd {
    Add {
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Mailbox quota: bytes, or with K/M/G/T (binary units); 0 = unlimited.
        #[arg(long, default_value = "0")]
        quota: String,
        #[arg(long, value_enum, default_value = "user")]
        admin_level: AdminLevel,
        /// Create the account disabled.
        #[arg(long)]
        disabled: bool,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    Show {
        address: String,
    },
    /// Set a new password.
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Set the quota: bytes, or with K/M/G/T; 0 or "unlimited" for none.
    Quota {
        address: String,
        quota: String,
    },
    Enable {
        address: String,
    },
    Disable {
        address: String,
    },
    Remove {
        address: String,
    },
}

#[derive(Subcommand)]
enum AliasCmd {
    Add {
        address: String,
        target: String,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    Remove {
        address: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ListMode {
    Public,
    Membership,
    Announcement,
}

#[derive(Subcommand)]
enum ListCmd {
    Add {
        address: String,
        /// Who may post: anyone, members only, or one announcer.
        #[arg(long, value_enum, default_value = "public")]
        mode: ListMode,
        /// The only sender allowed with --mode announcement.
        #[arg(long)]
        announce_from: Option<String>,
        /// Posting needs SMTP authentication.
        #[arg(long)]
        require_auth: bool,
    },
    Remove {
        address: String,
    },
    Show {
        address: String,
    },
    #[command(subcommand)]
    Member(MemberCmd),
}

#[derive(Subcommand)]
enum MemberCmd {
    Add { list: String, address: String },
    Remove { list: String, address: String },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Category {
    #[value(name = "local-local")]
    LocalLocal,
    #[value(name = "local-external")]
    LocalExternal,
    #[value(name = "external-local")]
    ExternalLocal,
    #[value(name = "external-external")]
    ExternalExternal,
    /// No category.
    None,
}

impl Category {
    const ALL: [(Category, &'static str); 4] = [
        (Category::LocalLocal, "local_to_local"),
        (Category::LocalExternal, "local_to_external"),
        (Category::ExternalLocal, "external_to_local"),
        (Category::ExternalExternal, "external_to_external"),
    ];
}

#[derive(Subcommand)]
enum IpRangeCmd {
    Add {
        name: String,
        /// First address of the range.
        #[arg(long)]
        lower: IpAddr,
        /// Last address of the range (default: the lower address).
        #[arg(long)]
        upper: Option<IpAddr>,
        /// 0–1000; the highest matching priority wins.
        #[arg(long, default_value_t = 20)]
        priority: i32,
        /// Refuse SMTP / POP3 / IMAP connections from the range.
        #[arg(long)]
        no_smtp: bool,
        #[arg(long)]
        no_pop3: bool,
        #[arg(long)]
        no_imap: bool,
        /// Sender→recipient categories that may be delivered (comma list; default: all but
        /// external-external).
        #[arg(long, value_enum, value_delimiter = ',')]
        allow: Option<Vec<Category>>,
        /// Categories that need SMTP authentication (default: all but external-local).
        #[arg(long, value_enum, value_delimiter = ',')]
        require_auth: Option<Vec<Category>>,
        #[arg(long)]
        no_antispam: bool,
        #[arg(long)]
        no_antivirus: bool,
        /// Expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires: Option<String>,
    },
    List,
    Remove {
        name: String,
    },
}

pub async fn run(cli: Cli) -> Result<(), Failure> {
    if let Noun::Migrate { config } = cli.command {
        return migrate(config).await;
    }
    let token = token(&cli)?;
    let client = Client::new(&cli.url, token)?;
    let json = cli.json;
    match cli.command {
        Noun::Domain(cmd) => domain(&client, cmd, json).await,
        Noun::Account(cmd) => account(&client, cmd, json).await,
        Noun::Alias(cmd) => alias(&client, cmd, json).await,
        Noun::List(cmd) => list(&client, cmd, json).await,
        Noun::Iprange(cmd) => ip_range(&client, cmd, json).await,
        Noun::Migrate { .. } => Ok(()),
    }
}

fn token(cli: &Cli) -> Result<String, Failure> {
    if let Some(token) = &cli.token {
        return Ok(token.clone());
    }
    if let Some(path) = &cli.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Usage(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
        })?;
        return Ok(text.trim().to_string());
    }
    Err(Failure::Usage(
        "no admin token: use --token, --token-file, MAILCTL_TOKEN or MAILCTL_TOKEN_FILE".into(),
    ))
}

fn password(args: &PasswordArgs) -> Result<String, Failure> {
    if let Some(password) = &args.password {
        return Ok(password.clone());
    }
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            Failure::Usage(format!("cannot read the password from standard input: {e}"))
        })?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Err(Failure::Usage(
                "the password read from standard input is empty".into(),
            ));
        }
        return Ok(line);
    }
    Err(Failure::Usage(
        "give the password with --password or --password-stdin".into(),
    ))
}

fn size(text: &str) -> Result<i64, Failure> {
    parse_size(text).map_err(Failure::Usage)
}

/// Prints `value` as JSON, or with `table` otherwise.
fn show(json: bool, value: &Value, table: fn(&Value)) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        table(value);
    }
}

fn done(json: bool, message: String) {
    if json {
        println!("{}", json!({ "ok": true, "message": message }));
    } else {
        println!("{message}");
    }
}

async fn domain(c: &Client, cmd: DomainCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        DomainCmd::Add { name } => show(
            json,
            &c.post("/domains", &json!({ "name": name })).await?,
            output::domain,
        ),
        DomainCmd::List => show(json, &c.get("/domains").await?, output::domains),
        DomainCmd::Show { name } => show(
            json,
            &c.get(&format!("/domains/{}", segment(&name))).await?,
            output::domain,
        ),
        DomainCmd::Remove { name, force } => {
            let force = if force { "true" } else { "false" };
            c.delete_query(&format!("/domains/{}", segment(&name)), &[("force", force)])
                .await?;
            done(json, format!("domain {name} removed"));
        }
        DomainCmd::Enable { name } => show(
            json,
            &c.patch(
                &format!("/domains/{}", segment(&name)),
                &json!({ "active": true }),
            )
            .await?,
            output::domain,
        ),
        DomainCmd::Disable { name } => show(
            json,
            &c.patch(
                &format!("/domains/{}", segment(&name)),
                &json!({ "active": false }),
            )
            .await?,
            output::domain,
        ),
        DomainCmd::Alias(DomainAliasCmd::Add { domain, alias }) => show(
            json,
            &c.post(
                &format!("/domains/{}/aliases", segment(&domain)),
                &json!({ "name": alias }),
            )
            .await?,
            output::domain,
        ),
        DomainCmd::Alias(DomainAliasCmd::Remove { domain, alias }) => show(
            json,
            &c.delete(&format!(
                "/domains/{}/aliases/{}",
                segment(&domain),
                segment(&alias)
            ))
            .await?,
            output::domain,
        ),
        DomainCmd::CatchAll(CatchAllCmd::Set { domain, address }) => show(
            json,
            &c.put(
                &format!("/domains/{}/catch-all", segment(&domain)),
                &json!({ "address": address }),
            )
            .await?,
            output::domain,
        ),
        DomainCmd::CatchAll(CatchAllCmd::Clear { domain }) => show(
            json,
            &c.delete(&format!("/domains/{}/catch-all", segment(&domain)))
                .await?,
            output::domain,
        ),
    }
    Ok(())
}

async fn account(c: &Client, cmd: AccountCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        AccountCmd::Add {
            address,
            password: pw,
            quota,
            admin_level,
            disabled,
        } => {
            let quota = size(&quota)?;
            let password = password(&pw)?;
            let level = match admin_level {
                AdminLevel::User => "user",
                AdminLevel::Domain => "domain",
                AdminLevel::Server => "server",
            };
            let body = json!({ "address": address, "password": password, "quota_bytes": quota,
                               "admin_level": level, "active": !disabled });
            show(json, &c.post("/accounts", &body).await?, output::account);
        }
        AccountCmd::List { domain } => {
            let value = match &domain {
                Some(domain) => c.get_query("/accounts", &[("domain", domain)]).await?,
                None => c.get("/accounts").await?,
            };
            show(json, &value, output::accounts);
        }
        AccountCmd::Show { address } => show(
            json,
            &c.get(&format!("/accounts/{}", segment(&address))).await?,
            output::account,
        ),
        AccountCmd::Passwd {
            address,
            password: pw,
        } => {
            let password = password(&pw)?;
            c.patch(
                &format!("/accounts/{}", segment(&address)),
                &json!({ "password": password }),
            )
            .await?;
            done(json, format!("password of {address} changed"));
        }
        AccountCmd::Quota { address, quota } => {
            let quota = size(&quota)?;
            let value = c
                .patch(
                    &format!("/accounts/{}", segment(&address)),
                    &json!({ "quota_bytes": quota }),
                )
                .await?;
            show(json, &value, output::account);
        }
        AccountCmd::Enable { address } => {
            let value = c
                .patch(
                    &format!("/accounts/{}", segment(&address)),
                    &json!({ "active": true }),
                )
                .await?;
            show(json, &value, output::account);
        }
        AccountCmd::Disable { address } => {
            let value = c
                .patch(
                    &format!("/accounts/{}", segment(&address)),
                    &json!({ "active": false }),
                )
                .await?;
            show(json, &value, output::account);
        }
        AccountCmd::Remove { address } => {
            c.delete(&format!("/accounts/{}", segment(&address)))
                .await?;
            done(json, format!("account {address} removed"));
        }
    }
    Ok(())
}

async fn alias(c: &Client, cmd: AliasCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        AliasCmd::Add { address, target } => {
            let value = c
                .post("/aliases", &json!({ "address": address, "target": target }))
                .await?;
            show(json, &Value::Array(vec![value]), output::aliases);
        }
        AliasCmd::List { domain } => {
            let value = match &domain {
                Some(domain) => c.get_query("/aliases", &[("domain", domain)]).await?,
                None => c.get("/aliases").await?,
            };
            show(json, &value, output::aliases);
        }
        AliasCmd::Remove { address } => {
            c.delete(&format!("/aliases/{}", segment(&address))).await?;
            done(json, format!("alias {address} removed"));
        }
    }
    Ok(())
}

async fn list(c: &Client, cmd: ListCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        ListCmd::Add {
            address,
            mode,
            announce_from,
            require_auth,
        } => {
            let mode = match mode {
                ListMode::Public => "public",
                ListMode::Membership => "membership",
                ListMode::Announcement => "announcement",
            };
            let body = json!({ "address": address, "mode": mode, "announce_address": announce_from,
                               "require_auth": require_auth });
            show(json, &c.post("/lists", &body).await?, output::list);
        }
        ListCmd::Remove { address } => {
            c.delete(&format!("/lists/{}", segment(&address))).await?;
            done(json, format!("list {address} removed"));
        }
        ListCmd::Show { address } => show(
            json,
            &c.get(&format!("/lists/{}", segment(&address))).await?,
            output::list,
        ),
        ListCmd::Member(MemberCmd::Add { list, address }) => {
            let value = c
                .post(
                    &format!("/lists/{}/members", segment(&list)),
                    &json!({ "address": address }),
                )
                .await?;
            show(json, &value, output::list);
        }
        ListCmd::Member(MemberCmd::Remove { list, address }) => {
            let value = c
                .delete(&format!(
                    "/lists/{}/members/{}",
                    segment(&list),
                    segment(&address)
                ))
                .await?;
            show(json, &value, output::list);
        }
    }
    Ok(())
}

fn matrix(body: &mut serde_json::Map<String, Value>, prefix: &str, chosen: Option<Vec<Category>>) {
    let Some(chosen) = chosen else { return };
    for (category, key) in Category::ALL {
        body.insert(
            format!("{prefix}{key}"),
            Value::Bool(chosen.contains(&category)),
        );
    }
}

async fn ip_range(c: &Client, cmd: IpRangeCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        IpRangeCmd::Add {
            name,
            lower,
            upper,
            priority,
            no_smtp,
            no_pop3,
            no_imap,
            allow,
            require_auth,
            no_antispam,
            no_antivirus,
            expires,
        } => {
            let mut body = serde_json::Map::new();
            body.insert("name".into(), json!(name));
            body.insert("priority".into(), json!(priority));
            body.insert("lower".into(), json!(lower.to_string()));
            body.insert("upper".into(), json!(upper.unwrap_or(lower).to_string()));
            body.insert("allow_smtp".into(), json!(!no_smtp));
            body.insert("allow_pop3".into(), json!(!no_pop3));
            body.insert("allow_imap".into(), json!(!no_imap));
            body.insert("antispam".into(), json!(!no_antispam));
            body.insert("antivirus".into(), json!(!no_antivirus));
            matrix(&mut body, "allow_", allow);
            matrix(&mut body, "require_auth_", require_auth);
            if let Some(expires) = expires {
                time::OffsetDateTime::parse(
                    &expires,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| {
                    Failure::Usage(format!("invalid --expires {expires:?}: {e} (use RFC 3339)"))
                })?;
                body.insert("expires_at".into(), json!(expires));
            }
            let value = c.post("/ip-ranges", &Value::Object(body)).await?;
            show(json, &Value::Array(vec![value]), output::ip_ranges);
        }
        IpRangeCmd::List => show(json, &c.get("/ip-ranges").await?, output::ip_ranges),
        IpRangeCmd::Remove { name } => {
            c.delete(&format!("/ip-ranges/{}", segment(&name))).await?;
            done(json, format!("IP range {name} removed"));
        }
    }
    Ok(())
}

/// Configuration `mailctl migrate` reads: only the database.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MigrateConfig {
    database: mc_runtime::sections::DatabaseConfig,
}

impl mc_runtime::config::ServiceConfig for MigrateConfig {
    fn finish(&mut self, errors: &mut Vec<mc_runtime::config::ConfigError>) {
        self.database.finish(errors);
    }
}

async fn migrate(config: Option<PathBuf>) -> Result<(), Failure> {
    let sources = mc_runtime::config::Sources::from_process(config);
    let config: MigrateConfig =
        mc_runtime::config::load(&sources).map_err(|e| Failure::Usage(e.to_string()))?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let pool = mc_runtime::stores::pg_connect(&config.database, &shutdown)
        .await
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
    mc_schema::migrate(&pool)
        .await
        .map_err(|e| Failure::Other(e.to_string()))?;
    println!("schema is at version {}", mc_schema::expected_version());
    Ok(())
}
