fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let t = std::time::Instant::now();
    let r = relent_sim::scoreboard::fleet::run_fleet(seeds);
    print!("{}", relent_sim::scoreboard::fleet::render_fleet_table(&r));
    eprintln!("{:?}", t.elapsed());
}
