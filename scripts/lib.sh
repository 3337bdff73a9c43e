# Shared by the scripts: put the project's pinned tools on PATH.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$root/.tools/node_modules/.bin:$root/node_modules/.bin:$PATH"
