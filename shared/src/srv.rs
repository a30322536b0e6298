//! `mongodb+srv://` URIs (what MongoDB Atlas hands out) expanded to the `mongodb://` seed
//! list they stand for, by the rules of the drivers' "Initial DNS Seedlist Discovery" spec:
//! the hosts of the SRV record `_mongodb._tcp.<host>`, which must lie in `<host>`'s domain;
//! the options of its TXT record (`authSource`, `replicaSet`, `loadBalanced` only), which
//! the URI's own options override; and TLS on unless the URI says otherwise.
//!
//! Resolved here rather than by the driver's resolver: that resolver and its cache were
//! about half a megabyte of every binary, for two DNS questions per cold start, asked here
//! at once in one UDP exchange each with the first `nameserver` of /etc/resolv.conf. What is
//! given up is the driver's re-reading of the SRV record every minute, which only finds
//! mongos routers added to a sharded cluster; a replica set's members are still discovered
//! from the members themselves, and a Lambda instance lives for minutes.
//!
//! The URI holds the database password: no error here repeats it.

use std::{
    borrow::Cow,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

const SCHEME: &str = "mongodb+srv://";
const TYPE_TXT: u16 = 16;
const TYPE_SRV: u16 = 33;
/// Per try; a resolver that does not answer at all costs `TRIES` of these.
const TIMEOUT: Duration = Duration::from_secs(2);
const TRIES: usize = 3;
/// The options a TXT record may set (the spec's list).
const TXT_OPTIONS: [&str; 3] = ["authSource", "replicaSet", "loadBalanced"];

#[derive(Debug, thiserror::Error)]
pub enum SrvError {
    #[error("MONGO_URI: {0}")]
    Uri(&'static str),
    #[error("MONGO_URI: the DNS lookup of {name} failed: {why}")]
    Lookup { name: String, why: String },
    #[error("MONGO_URI: {0}")]
    Record(String),
}

/// `uri` as the driver takes it: a `mongodb+srv://` URI expanded, any other unchanged.
pub async fn expand(uri: &str) -> Result<Cow<'_, str>, SrvError> {
    if !is_srv(uri) {
        return Ok(Cow::Borrowed(uri));
    }
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    expand_via(uri, nameserver(&conf)).await.map(Cow::Owned)
}

fn is_srv(uri: &str) -> bool {
    uri.get(..SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

/// The first `nameserver` of a resolv.conf; the local one when it names none (as glibc).
fn nameserver(conf: &str) -> SocketAddr {
    let ip = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .find_map(|rest| rest.trim().split('%').next()?.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, 53)
}

/// A `mongodb+srv://` URI taken apart.
struct SrvUri<'a> {
    /// `user:password@`, or empty.
    userinfo: &'a str,
    host: String,
    /// The database name, or empty.
    path: &'a str,
    options: Vec<(&'a str, &'a str)>,
}

impl<'a> SrvUri<'a> {
    fn parse(uri: &'a str) -> Result<Self, SrvError> {
        let rest = &uri[SCHEME.len()..];
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, host) = match authority.rfind('@') {
            Some(at) => authority.split_at(at + 1),
            None => ("", authority),
        };
        if host.contains(',') || host.contains(':') {
            return Err(SrvError::Uri(
                "a mongodb+srv:// URI names one host, without a port",
            ));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() || host.split('.').any(str::is_empty) {
            return Err(SrvError::Uri(
                "the mongodb+srv:// host name is empty or malformed",
            ));
        }
        let tail = tail.strip_prefix('/').unwrap_or(tail);
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        let options = query
            .split('&')
            .filter(|o| !o.is_empty())
            .map(|o| o.split_once('=').unwrap_or((o, "")))
            .collect();
        Ok(Self {
            userinfo,
            host,
            path,
            options,
        })
    }

    fn option(&self, name: &str) -> Option<&'a str> {
        self.options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Expands a `mongodb+srv://` URI, asking the DNS server at `server`.
pub async fn expand_via(uri: &str, server: SocketAddr) -> Result<String, SrvError> {
    if !is_srv(uri) {
        return Err(SrvError::Uri("not a mongodb+srv:// URI"));
    }
    let srv = SrvUri::parse(uri)?;
    let service = srv.option("srvServiceName").unwrap_or("mongodb");
    let srv_name = format!("_{service}._tcp.{}", srv.host);
    let (targets, txt) = tokio::join!(
        lookup(server, &srv_name, TYPE_SRV),
        lookup(server, &srv.host, TYPE_TXT)
    );
    let targets = targets?;
    if targets.is_empty() {
        return Err(SrvError::Record(format!("{srv_name} has no SRV records")));
    }
    let mut hosts = Vec::with_capacity(targets.len());
    for record in targets {
        let Record::Srv { port, target } = record else {
            continue;
        };
        let target = target.trim_end_matches('.').to_ascii_lowercase();
        if !in_domain(&srv.host, &target) {
            return Err(SrvError::Record(format!(
                "the SRV record of {} names {target}, outside its domain",
                srv.host
            )));
        }
        hosts.push(format!("{target}:{port}"));
    }
    let max_hosts: usize = match srv.option("srvMaxHosts") {
        Some(n) => n
            .parse()
            .map_err(|_| SrvError::Uri("srvMaxHosts must be a whole number"))?,
        None => 0,
    };
    if max_hosts > 0 && hosts.len() > max_hosts {
        use rand::seq::SliceRandom;
        hosts.shuffle(&mut rand::rng());
        hosts.truncate(max_hosts);
    }

    let txt: Vec<String> = txt?
        .into_iter()
        .filter_map(|r| match r {
            Record::Txt(t) => Some(t),
            Record::Srv { .. } => None,
        })
        .collect();
    if txt.len() > 1 {
        return Err(SrvError::Record(format!(
            "{} has {} TXT records (at most one is allowed)",
            srv.host,
            txt.len()
        )));
    }
    let mut options: Vec<String> = Vec::new();
    if srv.option("tls").is_none() && srv.option("ssl").is_none() {
        options.push("tls=true".into());
    }
    for option in txt
        .iter()
        .flat_map(|t| t.split('&'))
        .filter(|o| !o.is_empty())
    {
        let (key, _) = option.split_once('=').unwrap_or((option, ""));
        if !TXT_OPTIONS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            return Err(SrvError::Record(format!(
                "the TXT record of {} sets {key:?}, which only the URI may set",
                srv.host
            )));
        }
        if srv.option(key).is_none() {
            options.push(option.to_owned());
        }
    }
    options.extend(
        srv.options
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("srvServiceName") && !k.eq_ignore_ascii_case("srvMaxHosts")
            })
            .map(|(k, v)| format!("{k}={v}")),
    );
    let query = if options.is_empty() {
        String::new()
    } else {
        format!("?{}", options.join("&"))
    };
    Ok(format!(
        "mongodb://{}{}/{}{query}",
        srv.userinfo,
        hosts.join(","),
        srv.path
    ))
}

/// Whether an SRV target may serve `host`: in its parent domain (`x.cluster.example.com`
/// for `cluster.example.com`); a host of fewer than three labels is its own domain, and the
/// target must then lie below it.
fn in_domain(host: &str, target: &str) -> bool {
    let labels = host.split('.').count();
    let domain = if labels >= 3 {
        host.split_once('.').map_or(host, |(_, d)| d)
    } else {
        host
    };
    target
        .strip_suffix(domain)
        .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
}

#[derive(Debug, PartialEq)]
enum Record {
    Srv {
        port: u16,
        target: String,
    },
    /// A TXT record's strings, joined.
    Txt(String),
}

/// The records of type `kind` for `name`; none when the name or the records do not exist.
async fn lookup(server: SocketAddr, name: &str, kind: u16) -> Result<Vec<Record>, SrvError> {
    let failed = |why: String| SrvError::Lookup {
        name: name.to_owned(),
        why,
    };
    let id: u16 = rand::random();
    let question = query(id, name, kind).map_err(|e| failed(e.into()))?;
    let mut answer = exchange_udp(server, id, &question)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if truncated(&answer) {
        answer = exchange_tcp(server, &question)
            .await
            .map_err(|e| failed(e.to_string()))?;
    }
    parse(&answer, id, kind).map_err(|e| failed(e.into()))
}

/// A recursive question for `name`, type `kind`, with an EDNS0 record offering 4 KB
/// answers over UDP (an SRV answer for many hosts would not fit the classic 512 bytes).
fn query(id: u16, name: &str, kind: u16) -> Result<Vec<u8>, &'static str> {
    if name.len() > 253 {
        return Err("the name is longer than 253 characters");
    }
    let mut q = Vec::with_capacity(name.len() + 30);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|n| *n <= 63)
            .ok_or("a label is longer than 63 characters")?;
        q.push(len);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&kind.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
    Ok(q)
}

async fn exchange_udp(server: SocketAddr, id: u16, question: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    let mut buf = vec![0u8; 4096];
    for _ in 0..TRIES {
        socket.send(question).await?;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        // Anything but the answer to this question (a late answer to an earlier try is
        // one) is skipped.
        while let Ok(read) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            let n = read?;
            if n >= 2 && buf[..2] == id.to_be_bytes() {
                buf.truncate(n);
                return Ok(buf);
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer from {server}"),
    ))
}

/// Over TCP, as a resolver that truncated its UDP answer asks.
async fn exchange_tcp(server: SocketAddr, question: &[u8]) -> std::io::Result<Vec<u8>> {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let len = u16::try_from(question.len()).map_err(std::io::Error::other)?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(question);
        stream.write_all(&framed).await?;
        let len = stream.read_u16().await?;
        let mut answer = vec![0u8; usize::from(len)];
        stream.read_exact(&mut answer).await?;
        Ok(answer)
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TCP: no answer"))?
}

fn truncated(answer: &[u8]) -> bool {
    answer.get(2).is_some_and(|flags| flags & 0x02 != 0)
}

/// The records of type `kind` in an answer to question `id`.
fn parse(msg: &[u8], id: u16, kind: u16) -> Result<Vec<Record>, &'static str> {
    let short = "the answer is cut short";
    let header = msg.get(..12).ok_or(short)?;
    let u16_at = |at: usize| -> Result<u16, &'static str> {
        msg.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(short)
    };
    if header[..2] != id.to_be_bytes() || header[2] & 0x80 == 0 {
        return Err("the answer is not to this question");
    }
    match header[3] & 0x0f {
        0 => {}
        3 => return Ok(Vec::new()), // no such name
        2 => return Err("the server failed (SERVFAIL)"),
        5 => return Err("the server refused the question"),
        _ => return Err("the server answered with an error"),
    }
    let questions = u16_at(4)?;
    let answers = u16_at(6)?;
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(msg, at)? + 4;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        at = skip_name(msg, at)?;
        let rtype = u16_at(at)?;
        let rdlen = usize::from(u16_at(at + 8)?);
        let start = at + 10;
        let data = msg.get(start..start + rdlen).ok_or(short)?;
        at = start + rdlen;
        if rtype != kind {
            continue; // a CNAME the resolver followed, say
        }
        records.push(match kind {
            TYPE_SRV => {
                let port = data.get(4..6).ok_or(short)?;
                Record::Srv {
                    port: u16::from_be_bytes([port[0], port[1]]),
                    target: read_name(msg, start + 6)?,
                }
            }
            _ => {
                let mut text = Vec::new();
                let mut i = 0;
                while let Some(&len) = data.get(i) {
                    let part = data.get(i + 1..i + 1 + usize::from(len)).ok_or(short)?;
                    text.extend_from_slice(part);
                    i += 1 + usize::from(len);
                }
                Record::Txt(String::from_utf8(text).map_err(|_| "a TXT record is not UTF-8")?)
            }
        });
    }
    Ok(records)
}

/// Where the name at `at` ends.
fn skip_name(msg: &[u8], mut at: usize) -> Result<usize, &'static str> {
    loop {
        let len = *msg.get(at).ok_or("the answer is cut short")?;
        match len {
            0 => return Ok(at + 1),
            l if l & 0xc0 == 0xc0 => return Ok(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

/// The name at `at`, following compression pointers.
fn read_name(msg: &[u8], mut at: usize) -> Result<String, &'static str> {
    let short = "the answer is cut short";
    let mut name = String::new();
    // Each pointer must go back before the last one's target: the walk ends.
    let mut limit = at;
    loop {
        let len = *msg.get(at).ok_or(short)?;
        if len == 0 {
            return Ok(name);
        }
        if len & 0xc0 == 0xc0 {
            let low = *msg.get(at + 1).ok_or(short)?;
            let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
            if target >= limit {
                return Err("a name points forwards");
            }
            limit = target;
            at = target;
            continue;
        }
        let label = msg.get(at + 1..at + 1 + usize::from(len)).ok_or(short)?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(std::str::from_utf8(label).map_err(|_| "a name is not text")?);
        if name.len() > 253 {
            return Err("a name is longer than 253 characters");
        }
        at += 1 + usize::from(len);
    }
}

#[cfg(test)]
mod tests;
