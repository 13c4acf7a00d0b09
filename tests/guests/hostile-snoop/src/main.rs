//! Looks for what it was not given: files, environment, the network.

fn main() {
    let cache = std::env::args().nth(1).unwrap_or_default();
    for path in [
        "/etc/passwd",
        "/proc/self/environ",
        cache.as_str(),
        ".",
        "/",
    ] {
        match std::fs::read_dir(path)
            .map(|d| d.count())
            .or_else(|_| std::fs::read(path).map(|b| b.len()))
        {
            Ok(n) => println!("read {path:?}: {n}"),
            Err(e) => println!("denied {path:?}: {e}"),
        }
    }
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    println!("env {env:?}");
    match std::net::TcpStream::connect("127.0.0.1:5432") {
        Ok(_) => println!("network open"),
        Err(e) => println!("network denied: {e}"),
    }
}
