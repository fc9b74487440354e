//! `/status` and `/status.html`: every resilient service's figures
//! (restarts, checkpoints, log length, last recovery time) and the history
//! of recoveries seen, as JSON and as a page that refreshes itself and
//! plots the recoveries over time.

use crate::codec::{Damaged, Dec, Enc};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Recoveries kept in the history.
const HISTORY: usize = 500;

/// One resilient service's figures (from its companion).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceFigures {
    /// Its name.
    pub name: String,
    /// The service process.
    pub pid: u32,
    /// Restarts so far.
    pub restarts: u64,
    /// Committed checkpoints.
    pub checkpoints: u64,
    /// Requests in the log since the last checkpoint.
    pub log_len: u64,
    /// How long the last recovery took (ns).
    pub last_recovery_ns: u64,
    /// Requests handled.
    pub requests: u64,
    /// Crashes injected.
    pub injected: u64,
}

/// A recovery seen (a service's restart count went up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The service.
    pub service: String,
    /// When it was seen (ms since boot).
    pub at_ms: u64,
    /// How long it took (ns).
    pub recovery_ns: u64,
}

/// The latest figures and the recoveries seen.
#[derive(Default)]
pub struct StatusBoard {
    figures: Vec<ServiceFigures>,
    restarts: BTreeMap<String, u64>,
    history: VecDeque<Recovery>,
    updated_ms: u64,
}

fn json_string(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl StatusBoard {
    /// Take fresh figures at `now_ms`; restart counts that went up are
    /// recoveries.
    pub fn update(&mut self, now_ms: u64, figures: Vec<ServiceFigures>) {
        for f in &figures {
            let before = self.restarts.insert(f.name.clone(), f.restarts);
            if let Some(b) = before {
                for _ in b..f.restarts.min(b + 50) {
                    self.history.push_back(Recovery {
                        service: f.name.clone(),
                        at_ms: now_ms,
                        recovery_ns: f.last_recovery_ns,
                    });
                }
            } else if f.restarts > 0 {
                // Restarts from before httpd watched: the last one's time is known.
                self.history.push_back(Recovery {
                    service: f.name.clone(),
                    at_ms: now_ms,
                    recovery_ns: f.last_recovery_ns,
                });
            }
        }
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        self.figures = figures;
        self.updated_ms = now_ms;
    }

    /// The figures and the history, for a checkpoint.
    pub fn save(&self, e: &mut Enc) {
        e.u64(self.figures.len() as u64);
        for f in &self.figures {
            e.str(&f.name).u64(f.pid as u64).u64(f.restarts).u64(f.checkpoints).u64(f.log_len);
            e.u64(f.last_recovery_ns).u64(f.requests).u64(f.injected);
        }
        e.u64(self.restarts.len() as u64);
        for (name, n) in &self.restarts {
            e.str(name).u64(*n);
        }
        e.u64(self.history.len() as u64);
        for r in &self.history {
            e.str(&r.service).u64(r.at_ms).u64(r.recovery_ns);
        }
        e.u64(self.updated_ms);
    }

    /// A board from what [`StatusBoard::save`] wrote.
    pub fn restore(d: &mut Dec) -> Result<StatusBoard, Damaged> {
        let mut b = StatusBoard::default();
        for _ in 0..d.count(1 << 12)? {
            b.figures.push(ServiceFigures {
                name: d.str()?,
                pid: d.u32()?,
                restarts: d.u64()?,
                checkpoints: d.u64()?,
                log_len: d.u64()?,
                last_recovery_ns: d.u64()?,
                requests: d.u64()?,
                injected: d.u64()?,
            });
        }
        for _ in 0..d.count(1 << 12)? {
            let name = d.str()?;
            b.restarts.insert(name, d.u64()?);
        }
        for _ in 0..d.count(HISTORY)? {
            b.history.push_back(Recovery { service: d.str()?, at_ms: d.u64()?, recovery_ns: d.u64()? });
        }
        b.updated_ms = d.u64()?;
        Ok(b)
    }

    /// The recoveries seen, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &Recovery> {
        self.history.iter()
    }

    /// `/status`.
    pub fn json(&self, now_ms: u64) -> String {
        let services: Vec<String> = self
            .figures
            .iter()
            .map(|f| {
                format!(
                    "{{\"name\":{},\"pid\":{},\"restarts\":{},\"checkpoints\":{},\"log_length\":{},\"last_recovery_ns\":{},\"requests\":{},\"injected\":{}}}",
                    json_string(&f.name),
                    f.pid,
                    f.restarts,
                    f.checkpoints,
                    f.log_len,
                    f.last_recovery_ns,
                    f.requests,
                    f.injected
                )
            })
            .collect();
        let recoveries: Vec<String> = self
            .history
            .iter()
            .map(|r| {
                format!(
                    "{{\"service\":{},\"at_ms\":{},\"recovery_ns\":{}}}",
                    json_string(&r.service),
                    r.at_ms,
                    r.recovery_ns
                )
            })
            .collect();
        format!(
            "{{\"uptime_ms\":{now_ms},\"updated_ms\":{},\"services\":[{}],\"recoveries\":[{}]}}\n",
            self.updated_ms,
            services.join(","),
            recoveries.join(",")
        )
    }

    /// `/status.html`: the figures as a table (rendered here, so the page
    /// shows them without JavaScript) and a script that fetches `/status`
    /// every two seconds to redraw the table and the plot.
    pub fn html(&self, now_ms: u64) -> String {
        let mut rows = String::new();
        for f in &self.figures {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                crate::response::escape(&f.name),
                f.pid,
                f.restarts,
                f.checkpoints,
                f.log_len,
                if f.restarts == 0 {
                    String::from("-")
                } else {
                    format!("{}.{:03} ms", f.last_recovery_ns / 1_000_000, (f.last_recovery_ns / 1000) % 1000)
                }
            ));
        }
        let mut page = String::from(STATUS_PAGE);
        page = page.replace("{{ROWS}}", &rows);
        page = page.replace("{{RECOVERIES}}", &format!("{}", self.history.len()));
        page = page.replace("{{UPTIME}}", &format!("{}", now_ms / 1000));
        page
    }
}

const STATUS_PAGE: &str = r##"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Kintsugi: resilient services</title>
<meta http-equiv="refresh" content="30">
<style>
body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3em .8em;text-align:right}td:first-child,th:first-child{text-align:left}
svg{border:1px solid #ccc;background:#fafafa}.note{color:#666}
</style></head><body>
<h1>Resilient services</h1>
<p class="note">Up <span id="uptime">{{UPTIME}}</span> s; <span id="count">{{RECOVERIES}}</span> recoveries seen. This page refreshes itself.</p>
<table id="services"><thead><tr><th>Service</th><th>PID</th><th>Restarts</th><th>Checkpoints</th><th>Log</th><th>Last recovery</th></tr></thead>
<tbody>{{ROWS}}</tbody></table>
<h2>Recoveries over time</h2>
<svg id="plot" width="720" height="240" viewBox="0 0 720 240"></svg>
<p class="note">Each dot is one recovery: when it happened (x) and how long it took (y).</p>
<script>
const colours=["#d62728","#1f77b4","#2ca02c","#ff7f0e","#9467bd","#8c564b","#e377c2","#17becf"];
function ms(ns){return (ns/1e6).toFixed(3)+" ms";}
function draw(s){
  document.getElementById("uptime").textContent=Math.floor(s.uptime_ms/1000);
  document.getElementById("count").textContent=s.recoveries.length;
  const body=document.querySelector("#services tbody");body.innerHTML="";
  const names=s.services.map(x=>x.name);
  for(const f of s.services){const tr=document.createElement("tr");
    for(const v of [f.name,f.pid,f.restarts,f.checkpoints,f.log_length,f.restarts?ms(f.last_recovery_ns):"-"]){
      const td=document.createElement("td");td.textContent=v;tr.appendChild(td);}body.appendChild(tr);}
  const svg=document.getElementById("plot");svg.innerHTML="";
  const W=720,H=240,L=60,B=30;const r=s.recoveries;
  const t1=Math.max(s.uptime_ms,1),t0=Math.max(0,t1-600000);
  const ymax=Math.max(1,...r.map(x=>x.recovery_ns/1e6));
  const ns="http://www.w3.org/2000/svg";
  function el(n,a,t){const e=document.createElementNS(ns,n);for(const k in a)e.setAttribute(k,a[k]);if(t)e.textContent=t;svg.appendChild(e);return e;}
  el("line",{x1:L,y1:H-B,x2:W-10,y2:H-B,stroke:"#888"});el("line",{x1:L,y1:10,x2:L,y2:H-B,stroke:"#888"});
  el("text",{x:5,y:20,"font-size":11},ymax.toFixed(1)+" ms");el("text",{x:5,y:H-B,"font-size":11},"0 ms");
  el("text",{x:L,y:H-8,"font-size":11},Math.floor(t0/1000)+" s");el("text",{x:W-60,y:H-8,"font-size":11},Math.floor(t1/1000)+" s");
  for(const x of r){if(x.at_ms<t0)continue;
    const cx=L+(x.at_ms-t0)/(t1-t0)*(W-L-10),cy=H-B-(x.recovery_ns/1e6)/ymax*(H-B-10);
    const c=el("circle",{cx:cx,cy:cy,r:4,fill:colours[Math.max(0,names.indexOf(x.service))%colours.length]});
    const t=document.createElementNS(ns,"title");t.textContent=x.service+": "+ms(x.recovery_ns);c.appendChild(t);}
  names.forEach((n,i)=>el("text",{x:W-120,y:20+14*i,"font-size":11,fill:colours[i%colours.length]},n));
}
async function tick(){try{const r=await fetch("/status",{cache:"no-store"});draw(await r.json());}catch(e){}}
tick();setInterval(tick,2000);
</script></body></html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, restarts: u64) -> ServiceFigures {
        ServiceFigures { name: name.into(), restarts, last_recovery_ns: 1_500_000, ..Default::default() }
    }

    #[test]
    fn recoveries_are_counted_and_shown() {
        let mut b = StatusBoard::default();
        b.update(1000, vec![f("kv", 0), f("net", 2)]);
        b.update(2000, vec![f("kv", 1), f("net", 2)]);
        b.update(3000, vec![f("kv", 3), f("net", 2)]);
        let h: Vec<(String, u64)> = b.history().map(|r| (r.service.clone(), r.at_ms)).collect();
        assert_eq!(h, [("net".into(), 1000), ("kv".into(), 2000), ("kv".into(), 3000), ("kv".into(), 3000)]);
        let j = b.json(3500);
        assert!(j.starts_with("{\"uptime_ms\":3500,"), "{j}");
        assert!(j.contains(
            "{\"name\":\"kv\",\"pid\":0,\"restarts\":3,\"checkpoints\":0,\"log_length\":0,\"last_recovery_ns\":1500000"
        ));
        assert!(j.contains("{\"service\":\"kv\",\"at_ms\":2000,\"recovery_ns\":1500000}"));
        let h = b.html(3500);
        assert!(
            h.contains("<td>kv</td><td>0</td><td>3</td>") && h.contains("1.500 ms") && h.contains("fetch(\"/status\"")
        );
        assert_eq!(json_string("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}
