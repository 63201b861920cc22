//! A server on 127.0.0.1 that misbehaves at the HTTP level in one way per path,
//! `GET /fault/{name}`, written on raw TCP so it can break what a framework would not
//! let it break (truncated chunks, resets mid-message, lying headers).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct FaultServer {
    pub base_url: String,
    _runtime: tokio::runtime::Runtime,
}

const PATIENT: &str = r#"{"resourceType":"Patient","id":"p1","active":true}"#;

pub fn start() -> FaultServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve(socket));
        }
    });
    FaultServer {
        base_url: format!("http://{addr}"),
        _runtime: runtime,
    }
}

/// Reads one request head; returns its path.
async fn read_path(socket: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 65536 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head).lines().next()?.to_owned();
    line.split(' ').nth(1).map(str::to_owned)
}

fn response(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

const FHIR: &str = "Content-Type: application/fhir+json";
const OUTCOME: &str = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"it broke"}]}"#;

async fn serve(mut socket: TcpStream) {
    let Some(path) = read_path(&mut socket).await else {
        return;
    };
    let name = path.trim_start_matches("/fault/");
    let whole = |bytes: Vec<u8>| bytes;
    let reply: Vec<u8> = match name {
        "ok" => whole(response("200 OK", &[FHIR], PATIENT.as_bytes())),
        "reset-headers" => {
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Ty").await;
            let _ = socket.set_zero_linger();
            return;
        }
        "reset-body" => {
            let _ = socket
                .write_all(
                    format!("HTTP/1.1 200 OK\r\n{FHIR}\r\nContent-Length: 1000\r\n\r\n{{\"resourceType\"")
                        .as_bytes(),
                )
                .await;
            let _ = socket.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = socket.set_zero_linger();
            return;
        }
        "never" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        "trickle" => {
            let body = PATIENT.repeat(10);
            let head = format!(
                "HTTP/1.1 200 OK\r\n{FHIR}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for b in body.bytes() {
                if socket.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            return;
        }
        "huge-declared" => {
            let head = format!("HTTP/1.1 200 OK\r\n{FHIR}\r\nContent-Length: 500000000\r\n\r\n[");
            let _ = socket.write_all(head.as_bytes()).await;
            return;
        }
        "huge-chunked" => {
            let head = format!("HTTP/1.1 200 OK\r\n{FHIR}\r\nTransfer-Encoding: chunked\r\n\r\n");
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536));
            // 64 MiB at most, or until the client hangs up.
            for _ in 0..1024 {
                if socket.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
            return;
        }
        "chunked-truncated" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\n{FHIR}\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{{\"resourceType\"\r\n"
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.shutdown().await;
            return;
        }
        "invalid-utf8" => whole(response(
            "200 OK",
            &[FHIR],
            b"{\"resourceType\":\"Patient\",\"id\":\"\xff\xfe\xfd\"}",
        )),
        "html-as-json" => whole(response(
            "200 OK",
            &[FHIR],
            b"<html><body>Bad gateway</body></html>",
        )),
        "json-as-text" => whole(response(
            "200 OK",
            &["Content-Type: text/plain"],
            PATIENT.as_bytes(),
        )),
        "bad-gzip" => whole(response(
            "200 OK",
            &[FHIR, "Content-Encoding: gzip"],
            b"this is not gzip at all",
        )),
        "redirect-loop" => whole(response(
            "302 Found",
            &["Location: /fault/redirect-loop"],
            b"",
        )),
        "500-body" => whole(response(
            "500 Internal Server Error",
            &[FHIR],
            OUTCOME.as_bytes(),
        )),
        "500-empty" => whole(response("500 Internal Server Error", &[], b"")),
        "502-body" => whole(response(
            "502 Bad Gateway",
            &["Content-Type: text/html"],
            b"<h1>502 Bad Gateway</h1>",
        )),
        "502-empty" => whole(response("502 Bad Gateway", &[], b"")),
        "503-body" => whole(response(
            "503 Service Unavailable",
            &[FHIR],
            OUTCOME.as_bytes(),
        )),
        "503-empty" => whole(response("503 Service Unavailable", &[], b"")),
        "429-retry-after" => whole(response(
            "429 Too Many Requests",
            &[FHIR, "Retry-After: 1"],
            OUTCOME.as_bytes(),
        )),
        "429" => whole(response(
            "429 Too Many Requests",
            &[FHIR],
            OUTCOME.as_bytes(),
        )),
        "location-not-url" => whole(response(
            "201 Created",
            &[FHIR, "Location: ::not a url::"],
            PATIENT.as_bytes(),
        )),
        _ => whole(response("404 Not Found", &[FHIR], OUTCOME.as_bytes())),
    };
    let _ = socket.write_all(&reply).await;
    let _ = socket.shutdown().await;
}
