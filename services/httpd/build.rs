//! Generates the httpd protocol and companion from `httpd.contract`.
fn main() {
    let options = companion_gen::Options { runtime: "libos".into(), resiliency: Some("resiliency_lib".into()) };
    companion_gen::build("httpd.contract", &options);
}
