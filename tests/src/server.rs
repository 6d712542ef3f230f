//! A real `rampart serve` process for end-to-end tests: started on an
//! ephemeral port, talked to over plain HTTP/1.1, signalled, and killed when
//! dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::{rampart_bin, workspace_root};

/// A running server and everything it has logged so far.
pub struct Server {
    child: Child,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    /// A data directory made for this server (removed on drop).
    own_data_dir: Option<PathBuf>,
}

/// A fresh directory in the temp dir, unique within the test run.
pub fn temp_data_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rampart-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// An HTTP answer: status and body.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Response headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl Reply {
    /// The value of the header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The pause a refusal asks for (`Retry-After`, in seconds).
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")?
            .parse()
            .ok()
            .map(Duration::from_secs)
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// If it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

impl Server {
    /// Starts `rampart` (which serves by default) with `args` plus
    /// ephemeral HTTP, UDP and WebSocket ports and, unless `args` name one,
    /// a data directory of its own (so its embedded database is its own),
    /// and waits until it logs its HTTP address.
    ///
    /// # Panics
    /// If it does not start within 30 s.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    /// [`Server::start`] with extra environment variables; an address flag
    /// in `args` (`--http-addr`, `--udp-addr`, `--ws-addr`) replaces the
    /// ephemeral one.
    ///
    /// # Panics
    /// If it does not start within 30 s.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let own_data_dir = (!args.contains(&"--data-dir")).then(|| temp_data_dir("data"));
        let mut command = Command::new(rampart_bin());
        if let Some(dir) = &own_data_dir {
            command.arg("--data-dir").arg(dir);
        }
        for flag in ["--http-addr", "--udp-addr", "--ws-addr"] {
            if !args.contains(&flag) {
                command.args([flag, "127.0.0.1:0"]);
            }
        }
        let mut child = command
            .current_dir(workspace_root())
            .args(args)
            .env_remove("AGONES_SDK_HTTP_PORT")
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rampart serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let logs = logs.clone();
            let found = found.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(addr) = line
                        .split("http_addr=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                    {
                        let _ = found.send(addr.trim_matches('"').to_owned());
                    }
                    logs.lock().expect("log lock").push(line);
                }
            });
        }
        let addr = match address.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().expect("logged http_addr is an address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not log its http_addr; logs: {:#?}",
                    logs.lock().expect("log lock")
                );
            }
        };
        Server {
            child,
            addr,
            logs,
            own_data_dir,
        }
    }

    /// Everything logged so far, stdout and stderr interleaved by arrival.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("log lock").clone()
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    ///
    /// # Panics
    /// If `kill` cannot be run.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None, None)
    }

    /// `POST path` with a JSON body and a bearer token.
    pub fn post(&self, path: &str, body: &serde_json::Value, token: Option<&str>) -> Reply {
        self.request("POST", path, Some(&body.to_string()), token)
    }

    /// `DELETE path` with a bearer token.
    pub fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.request("DELETE", path, None, token)
    }

    /// One HTTP/1.1 request on a fresh connection.
    ///
    /// # Panics
    /// On a connection or protocol failure: the test cannot go on.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> Reply {
        request(self.addr, method, path, body, token).expect("HTTP request to the server")
    }
}

/// Sends a request again while the server refuses it with 503, as a client
/// should: each refusal waits its `Retry-After`, or without one a backoff
/// doubling from 100 ms to 2 s. Past `patience` the refusal is the answer.
/// Returns the answer and how many refusals came before it.
///
/// # Errors
/// What `send` fails with.
pub fn retry_unavailable<E>(
    patience: Duration,
    mut send: impl FnMut() -> Result<Reply, E>,
) -> Result<(Reply, usize), E> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let mut refusals = 0;
    loop {
        let reply = send()?;
        if reply.status != 503 || started.elapsed() > patience {
            return Ok((reply, refusals));
        }
        refusals += 1;
        std::thread::sleep(reply.retry_after().unwrap_or(backoff));
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One HTTP/1.1 request to `addr` on a fresh connection (JSON body, bearer
/// token), for servers this process did not start.
///
/// # Errors
/// The connection or the exchange failed.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(parse_response(&response))
}

fn parse_response(response: &str) -> Reply {
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Decodes a chunked body (hyper chunks bodies of unknown length).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.own_data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Reads one sample from Prometheus text: the value of the line whose name
/// and labels match exactly (`name` or `name{labels}`).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|value| value.trim().parse().ok())
        })
}

/// The upper bound of the histogram bucket holding quantile `q` of `name`.
pub fn histogram_quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let count = metric(text, &format!("{name}_count"))?;
    let wanted = count * q;
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (bound, value) = rest.split_once("\"} ")?;
            Some((
                bound.parse::<f64>().unwrap_or(f64::INFINITY),
                value.trim().parse::<f64>().ok()?,
            ))
        })
        .find(|&(_, cumulative)| cumulative >= wanted)
        .map(|(bound, _)| bound)
}
