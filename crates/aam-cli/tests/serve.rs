//! `aam serve` as a user starts it: on a free port with the shipped model, answering a
//! KServe v2 request, then stopped by SIGTERM (a container stop) with exit status 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One HTTP/1.1 request; the status line and body of the answer.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

#[test]
fn serves_the_shipped_model_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(["serve", "--port", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut seen = String::new();
    for _ in 0..20 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(rest) = line.split("on http://").nth(1) {
            addr = rest.split_whitespace().next().map(str::to_string);
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no address printed:\n{seen}"));
    let (status, _) = http(&addr, "GET", "/v2/health/ready", "");
    assert!(status.contains(" 200 "), "{status}");
    let (status, body) = http(&addr, "GET", "/v2/models/circadian-exposure", "");
    assert!(status.contains(" 200 ") && body.contains("\"exposure_type\""), "{status} {body}");
    let meta: serde_json::Value = serde_json::from_str(&body).unwrap();
    let width = meta["inputs"][0]["shape"][2].as_u64().unwrap();
    let tokens: Vec<String> = (0..width).map(|k| if k == 0 { "5".into() } else { (1 + k % 4).to_string() }).collect();
    let request = format!(
        "{{\"inputs\":[{{\"name\":\"tokens\",\"shape\":[1,1,{width}],\"datatype\":\"INT64\",\"data\":[{}]}}]}}",
        tokens.join(",")
    );
    let (status, body) = http(&addr, "POST", "/v2/models/circadian-exposure/infer", &request);
    assert!(status.contains(" 200 ") && body.contains("\"class_probabilities\""), "{status} {body}");

    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let exit = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(exit.success(), "exit {exit:?}: {rest}");
    assert!(rest.contains("server stopped"), "{rest}");
}
