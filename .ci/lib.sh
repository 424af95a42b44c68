# Shared helpers for the scripts in .ci/: install what is missing, skip what is there.
# Sourced, not run.

WASM_BINDGEN_VERSION=$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p;}' Cargo.lock)
export PATH="$HOME/.cargo/bin:$PATH"

ensure_wasm_toolchain() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "==> installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    echo "==> installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (matches the pinned crate; ~2 minutes)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

# Makes sure a Postgres answers at DATABASE_URL's host (default 127.0.0.1:5432): starts an
# installed but stopped cluster, or says what to install.
pg_answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

ensure_postgres() {
  local host=127.0.0.1 port=5432
  # A DATABASE_URL that names another server is the user's to run.
  case "${DATABASE_URL:-}" in
    ""|*@127.0.0.1:5432/*|*@localhost:5432/*|*@127.0.0.1/*|*@localhost/*) ;;
    *) echo "==> using the Postgres named by DATABASE_URL"; return 0 ;;
  esac
  if pg_answers "$host" "$port"; then
    return 0
  fi
  if ! command -v pg_ctlcluster >/dev/null && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    cat >&2 <<MSG
Patchbay needs PostgreSQL (15 or newer) listening on $host:$port, and none is installed here.
Install it with:   apt-get install -y postgresql
(or point DATABASE_URL at a Postgres you already run), then run this command again.
MSG
    exit 1
  fi
  local version cluster
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1 || true)
  if [ -n "$version" ] && [ -d "/etc/postgresql/$version/main" ]; then
    echo "==> starting PostgreSQL $version (cluster main)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  else
    # Binaries but no cluster: make a private one under target/, owned by the postgres user
    # (initdb and postgres refuse to run as root), with trust auth on loopback.
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    cluster="$PWD/target/pgdata"
    echo "==> starting a private PostgreSQL cluster in $cluster"
    mkdir -p "$cluster"
    if [ "$(id -u)" = 0 ]; then chown postgres "$cluster"; RUN="runuser -u postgres --"; else RUN=""; fi
    if [ ! -f "$cluster/PG_VERSION" ]; then
      $RUN "$bin/initdb" -D "$cluster" -U postgres --auth=trust >/dev/null
    fi
    $RUN "$bin/pg_ctl" -D "$cluster" -o "-p $port -k /tmp -c listen_addresses=$host" -l "$cluster/log" start
  fi
  for _ in $(seq 1 30); do
    pg_answers "$host" "$port" && return 0
    sleep 1
  done
  echo "PostgreSQL did not come up on $host:$port; see its log." >&2
  exit 1
}

# Chromium for the browser tests, from Debian's packages (never a browser download).
ensure_chromium() {
  if [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Chromium from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "The browser tests need Chromium: install it with 'sudo apt-get install chromium'." >&2
    exit 1
  fi
}

ensure_node_deps() {
  if ! command -v npm >/dev/null; then
    echo "The browser tests need Node.js 18+ and npm: install them with 'sudo apt-get install nodejs npm'." >&2
    exit 1
  fi
  if [ ! -x end2end/node_modules/.bin/playwright ]; then
    echo "==> installing the browser-test packages (npm ci)"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
}

# Waits until http://$1:$2/healthz answers 200, or fails after $3 seconds (bash only, no curl).
wait_healthy() {
  for _ in $(seq 1 "$3"); do
    if (exec 3<>"/dev/tcp/$1/$2" && printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" >&3 && head -n1 <&3 | grep -q ' 200 ') 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  echo "Patchbay did not become healthy at $1:$2" >&2
  return 1
}

# Shrinks the site's wasm with binaryen's wasm-opt, about threefold (npm's binaryen; Debian's
# binaryen 108 produces a broken wasm). wasm-opt takes about a minute, so its output is kept under
# the hash of its input and reused while the wasm does not change. Without npm the site is left
# unoptimized (it works, only larger).
optimize_wasm() {
  local wasm="$1" tools=target/tools/binaryen cache=target/wasm-opt-cache
  local wasm_opt="$tools/node_modules/.bin/wasm-opt"
  if [ ! -x "$wasm_opt" ]; then
    if ! command -v npm >/dev/null; then
      echo "==> npm is missing: the wasm stays unoptimized (install nodejs and npm to shrink it)"
      return 0
    fi
    echo "==> installing binaryen 132 (wasm-opt) from npm"
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-audit --no-fund --silent binaryen@132.0.0
  fi
  local hash
  hash="$(sha256sum "$wasm" | cut -c1-64)"
  mkdir -p "$cache"
  if [ ! -f "$cache/$hash.wasm" ]; then
    echo "==> optimizing the wasm (wasm-opt -Oz, about a minute)"
    rm -f "$cache"/*.wasm
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$wasm" -o "$cache/$hash.tmp"
    mv "$cache/$hash.tmp" "$cache/$hash.wasm"
  fi
  cp "$cache/$hash.wasm" "$wasm"
}

# A command from a Debian package, installed when missing (as root) or asked for.
ensure_tool() {
  local cmd="$1" package="$2"
  if command -v "$cmd" >/dev/null; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing $package from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  else
    echo "The benchmarks need $cmd: install it with 'sudo apt-get install $package'." >&2
    exit 1
  fi
}
