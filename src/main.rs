fn main() { std::process::exit(iam_keys::run()) }
