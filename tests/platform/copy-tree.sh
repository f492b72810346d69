#!/usr/bin/env bash
# copy-tree.sh SRC DEST - copy a synroute checkout: the files git tracks plus
# the new files it does not ignore (so never build/), as they are in the work
# tree. Outside a git checkout: everything but build/ and .git.
set -euo pipefail
src=$1 dest=$2
mkdir -p "$dest"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # deleted-but-tracked files are listed too: skip what does not exist
    git -C "$src" ls-files -z --cached --others --exclude-standard \
        | (cd "$src" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done; :' copy) \
        | tar -C "$src" --null --no-recursion -T - -cf - \
        | tar -C "$dest" -xf -
else
    tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$dest" -xf -
fi
