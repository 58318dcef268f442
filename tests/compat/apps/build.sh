#!/usr/bin/env bash
# Resolves one of the applications beside this script from Maven Central (its pom.xml) and
# compiles its sources, then prints its classpath. Both are cached under
# tests/compat/.work/apps/NAME-VERSION/ and redone only when the pom or a source is newer;
# the jars themselves live in the normal Maven local repository.
#
#   build.sh streams|connect
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${1:?usage: build.sh streams|connect}"
src="$here/$name"
[ -f "$src/pom.xml" ] || { echo "no application '$name' in $here" >&2; exit 2; }
version="$(sed -n 's/.*<\(kafka\|connect\)\.version>\([^<]*\)<.*/\2/p' "$src/pom.xml" | head -1)"
cache="$(cd "$here/.." && pwd)/.work/apps/$name-$version"
mkdir -p "$cache"
if [ ! -s "$cache/classpath.txt" ] || [ "$cache/classpath.txt" -ot "$src/pom.xml" ]; then
    echo "resolving $name $version from Maven Central (first run only)..." >&2
    mvn -q -f "$src/pom.xml" dependency:build-classpath -Dmdep.outputFile="$cache/classpath.txt.tmp" >&2
    mv "$cache/classpath.txt.tmp" "$cache/classpath.txt"
    rm -f "$cache/classes.stamp"
fi
cp="$(cat "$cache/classpath.txt")"
sources=("$src"/*.java)
if [ -e "${sources[0]}" ]; then
    stale=""
    [ -f "$cache/classes.stamp" ] || stale=1
    for f in "${sources[@]}"; do [ "$f" -nt "$cache/classes.stamp" ] && stale=1; done
    if [ -n "$stale" ]; then
        rm -rf "$cache/classes"
        javac -nowarn -d "$cache/classes" -cp "$cp" "${sources[@]}" >&2
        touch "$cache/classes.stamp"
    fi
    cp="$cp:$cache/classes"
fi
echo "$cp"
