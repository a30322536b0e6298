use std::{collections::HashMap, sync::Arc};

use tokio::net::TcpListener;

use super::*;

/// What the stub DNS server knows: per (name, type), the records' data in wire form.
#[derive(Default, Clone)]
struct Zone {
    records: HashMap<(String, u16), Vec<Vec<u8>>>,
    /// UDP answers come back truncated (TC), so the client must ask again over TCP.
    truncate_udp: bool,
}

fn labels(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in name.split('.') {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

fn srv_data(port: u16, target: &str) -> Vec<u8> {
    let mut d = vec![0, 0, 0, 0];
    d.extend_from_slice(&port.to_be_bytes());
    d.extend_from_slice(&labels(target));
    d
}

fn txt_data(parts: &[&str]) -> Vec<u8> {
    let mut d = Vec::new();
    for p in parts {
        d.push(p.len() as u8);
        d.extend_from_slice(p.as_bytes());
    }
    d
}

impl Zone {
    fn srv(mut self, name: &str, hosts: &[(u16, &str)]) -> Self {
        self.records.insert(
            (name.into(), TYPE_SRV),
            hosts.iter().map(|(p, t)| srv_data(*p, t)).collect(),
        );
        self
    }

    fn txt(mut self, name: &str, records: &[&[&str]]) -> Self {
        self.records.insert(
            (name.into(), TYPE_TXT),
            records.iter().map(|r| txt_data(r)).collect(),
        );
        self
    }

    /// The answer to `query`: its question echoed, the records named by a pointer to it.
    fn answer(&self, query: &[u8], truncated: bool) -> Vec<u8> {
        let end = skip_name(query, 12).expect("question name") + 4;
        let name = read_name(query, 12).expect("question name");
        let kind = u16::from_be_bytes([query[end - 4], query[end - 3]]);
        let found = self.records.get(&(name, kind)).cloned().unwrap_or_default();
        let mut msg = query[..2].to_vec();
        msg.extend_from_slice(&[0x81 | if truncated { 0x02 } else { 0 }, 0x80, 0, 1]);
        let count = if truncated { 0 } else { found.len() as u16 };
        msg.extend_from_slice(&count.to_be_bytes());
        msg.extend_from_slice(&[0, 0, 0, 0]);
        msg.extend_from_slice(&query[12..end]);
        if !truncated {
            for data in found {
                msg.extend_from_slice(&[0xc0, 12]);
                msg.extend_from_slice(&kind.to_be_bytes());
                msg.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
                msg.extend_from_slice(&(data.len() as u16).to_be_bytes());
                msg.extend_from_slice(&data);
            }
        }
        msg
    }
}

/// A DNS server on 127.0.0.1 (UDP and TCP on one port) answering from `zone`; it counts
/// the questions that reached it over TCP.
async fn serve(zone: Zone) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("tcp");
    let addr = tcp.local_addr().expect("addr");
    let udp = UdpSocket::bind(addr).await.expect("udp on the tcp port");
    let over_tcp = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let z = zone.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let answer = z.answer(&buf[..n], z.truncate_udp);
            let _ = udp.send_to(&answer, from).await;
        }
    });
    let counter = over_tcp.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let len = stream.read_u16().await.expect("length");
            let mut q = vec![0u8; usize::from(len)];
            stream.read_exact(&mut q).await.expect("question");
            let answer = zone.answer(&q, false);
            let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&answer);
            stream.write_all(&framed).await.expect("answer");
        }
    });
    (addr, over_tcp)
}

fn atlas() -> Zone {
    Zone::default()
        .srv(
            "_mongodb._tcp.cluster0.ab1cd.mongodb.net",
            &[
                (27017, "ac-1-shard-00-00.ab1cd.mongodb.net"),
                (27017, "ac-1-shard-00-01.ab1cd.mongodb.net"),
                (27018, "ac-1-shard-00-02.ab1cd.mongodb.net"),
            ],
        )
        .txt(
            "cluster0.ab1cd.mongodb.net",
            &[&["authSource=admin&", "replicaSet=atlas-xyz-shard-0"]],
        )
}

const URI: &str =
    "mongodb+srv://app:s3cr%40t@Cluster0.ab1cd.mongodb.net/wa?retryWrites=true&w=majority";

#[tokio::test]
async fn an_atlas_uri_becomes_its_seed_list_with_tls_and_the_txt_options() {
    let (dns, _) = serve(atlas()).await;
    let uri = expand_via(URI, dns).await.expect("expands");
    assert_eq!(
        uri,
        "mongodb://app:s3cr%40t@ac-1-shard-00-00.ab1cd.mongodb.net:27017,\
         ac-1-shard-00-01.ab1cd.mongodb.net:27017,ac-1-shard-00-02.ab1cd.mongodb.net:27018/wa\
         ?tls=true&authSource=admin&replicaSet=atlas-xyz-shard-0&retryWrites=true&w=majority"
    );
    // What the driver makes of it (parsing a mongodb:// URI asks no DNS).
    let options = mongodb::options::ClientOptions::parse(&uri)
        .await
        .expect("the driver takes it");
    assert_eq!(options.hosts.len(), 3);
    assert_eq!(options.repl_set_name.as_deref(), Some("atlas-xyz-shard-0"));
    assert_eq!(options.default_database.as_deref(), Some("wa"));
    assert!(matches!(
        options.tls,
        Some(mongodb::options::Tls::Enabled(_))
    ));
    let credential = options.credential.expect("credential");
    assert_eq!(credential.password.as_deref(), Some("s3cr@t"));
    assert_eq!(credential.source.as_deref(), Some("admin"));
}

#[tokio::test]
async fn the_uris_own_options_win_over_the_txt_record_and_tls_can_be_turned_off() {
    let (dns, _) = serve(atlas()).await;
    let uri = expand_via(
        "mongodb+srv://cluster0.ab1cd.mongodb.net/?authSource=other&tls=false",
        dns,
    )
    .await
    .expect("expands");
    assert!(uri.starts_with("mongodb://ac-1-shard-00-00.ab1cd.mongodb.net:27017,"));
    assert!(
        uri.ends_with("/?replicaSet=atlas-xyz-shard-0&authSource=other&tls=false"),
        "{uri}"
    );
}

#[tokio::test]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let (dns, over_tcp) = serve(Zone {
        truncate_udp: true,
        ..atlas()
    })
    .await;
    let uri = expand_via(URI, dns).await.expect("expands");
    assert!(
        uri.contains("ac-1-shard-00-02.ab1cd.mongodb.net:27018"),
        "{uri}"
    );
    assert_eq!(
        over_tcp.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the SRV and the TXT question"
    );
}

#[tokio::test]
async fn srv_max_hosts_keeps_that_many_and_srv_options_are_not_passed_on() {
    let (dns, _) = serve(Zone::default().srv(
        "_custom._tcp.db.example.com",
        &[
            (1, "a.example.com"),
            (2, "b.example.com"),
            (3, "c.example.com"),
        ],
    ))
    .await;
    let uri = expand_via(
        "mongodb+srv://db.example.com/?srvServiceName=custom&srvMaxHosts=2",
        dns,
    )
    .await
    .expect("expands");
    let hosts = uri
        .strip_prefix("mongodb://")
        .and_then(|u| u.split_once('/'))
        .map(|(h, _)| h.split(',').count());
    assert_eq!(hosts, Some(2), "{uri}");
    assert!(uri.ends_with("/?tls=true"), "{uri}");
}

#[tokio::test]
async fn records_that_break_the_specs_rules_are_refused_without_the_password() {
    let foreign = Zone::default().srv(
        "_mongodb._tcp.cluster0.ab1cd.mongodb.net",
        &[(27017, "evil.example.org")],
    );
    let cases = [
        (foreign, "outside its domain"),
        (
            atlas().txt(
                "cluster0.ab1cd.mongodb.net",
                &[&["authSource=a"], &["replicaSet=b"]],
            ),
            "2 TXT records",
        ),
        (
            atlas().txt("cluster0.ab1cd.mongodb.net", &[&["tls=false"]]),
            "which only the URI may set",
        ),
        (Zone::default(), "has no SRV records"),
    ];
    for (zone, expected) in cases {
        let (dns, _) = serve(zone).await;
        let e = expand_via(URI, dns).await.expect_err(expected).to_string();
        assert!(e.contains(expected), "{e}");
        assert!(!e.contains("s3cr"), "the password leaked: {e}");
    }
}

#[tokio::test]
async fn uris_that_are_not_one_srv_host_are_refused_before_any_lookup() {
    // Nothing listens on this address: a lookup would time out.
    let nowhere: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    for (uri, expected) in [
        ("mongodb+srv://a.example.com,b.example.com/db", "one host"),
        (
            "mongodb+srv://u:s3cret@a.example.com:27017/db",
            "without a port",
        ),
        ("mongodb+srv:///db", "empty or malformed"),
        ("mongodb://a.example.com/db", "not a mongodb+srv"),
    ] {
        let e = expand_via(uri, nowhere).await.expect_err(uri).to_string();
        assert!(e.contains(expected), "{uri}: {e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}

#[tokio::test]
async fn other_uris_are_passed_through_untouched() {
    let uri = "mongodb://127.0.0.1:27017/wa?directConnection=true";
    assert!(matches!(expand(uri).await, Ok(Cow::Borrowed(u)) if u == uri));
}

#[test]
fn targets_must_lie_in_the_hosts_domain() {
    assert!(in_domain(
        "cluster0.ab1cd.mongodb.net",
        "ac-1.ab1cd.mongodb.net"
    ));
    assert!(in_domain(
        "cluster0.ab1cd.mongodb.net",
        "x.cluster0.ab1cd.mongodb.net"
    ));
    assert!(!in_domain("cluster0.ab1cd.mongodb.net", "ac-1.mongodb.net"));
    assert!(!in_domain(
        "cluster0.ab1cd.mongodb.net",
        "evilab1cd.mongodb.net"
    ));
    // Fewer than three labels: below the host itself.
    assert!(in_domain("example.com", "db.example.com"));
    assert!(!in_domain("example.com", "example.com"));
    assert!(!in_domain("example.com", "db.other.com"));
}

#[test]
fn the_first_nameserver_of_resolv_conf_is_asked() {
    let conf = "# generated\nsearch ec2.internal\nnameserver 169.254.78.1\nnameserver 10.0.0.2\n";
    assert_eq!(nameserver(conf), "169.254.78.1:53".parse().expect("addr"));
    assert_eq!(
        nameserver("nameserver fe80::1%eth0\n"),
        "[fe80::1]:53".parse().expect("addr")
    );
    assert_eq!(nameserver(""), "127.0.0.1:53".parse().expect("addr"));
}

#[test]
fn malformed_answers_are_errors_not_panics() {
    let q = query(7, "_mongodb._tcp.cluster0.ab1cd.mongodb.net", TYPE_SRV).expect("query");
    let good = atlas().answer(&q, false);
    assert_eq!(parse(&good, 7, TYPE_SRV).map(|r| r.len()), Ok(3));
    // Every prefix of an answer (cut short anywhere) and a few corruptions.
    for cut in 0..good.len() {
        let _ = parse(&good[..cut], 7, TYPE_SRV);
    }
    assert!(parse(&good, 8, TYPE_SRV).is_err(), "another question's id");
    // A name that points at itself.
    let mut looped = good.clone();
    let at = looped.len();
    looped.extend_from_slice(&[0xc0, 0]);
    looped[at] = 0xc0 | ((at >> 8) as u8);
    looped[at + 1] = at as u8;
    assert!(read_name(&looped, at).is_err());
    // Two pointers taking turns.
    let pair = [0u8; 12]
        .iter()
        .copied()
        .chain([1, b'a', 0xc0, 14, 1, b'b', 0xc0, 12])
        .collect::<Vec<u8>>();
    assert!(read_name(&pair, 16).is_err());
    assert!(query(1, &"a".repeat(64), TYPE_SRV).is_err());
}
