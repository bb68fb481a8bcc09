#!/usr/bin/env bash
# kcat (Debian's, on librdkafka 2.0.2) in Weir's compatibility scenario.
#
#     compat.sh BOOTSTRAP TOPIC
#
# kcat has no admin API: the topic is auto-created by the first produce (run.py starts
# this client's playground with --default-partitions 4), and describe_configs,
# alter_configs, delete_records and delete_topic report themselves not applicable. kcat sets no
# per-record timestamps and one set of headers for all records, so those are checked as
# sent (CreateTime, the -H headers). Offsets come from -Q (offsets_for_times; -2
# earliest, -1 latest); groups from -G (the balanced consumer, auto-commit on close).
# Prints one JSON line per step for tests/compat/run.py; the scenario is
# tests/compat/python/scenario.py's.
set -uo pipefail
B=$1
T=$2
PARTITIONS=4
RECORDS=10000
PATIENCE=60 # seconds; a bound against hanging, not a timing assertion
HEADERS="origin=weir-compat,client=kcat"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

report() { # step ok|skip|fail [message]
  local msg=${3:-}
  msg=${msg//\\/\\\\}
  msg=${msg//\"/\\\"}
  msg=$(printf '%s' "$msg" | tr '\n\t' '  ')
  case $2 in
    ok) printf '{"step":"%s","ok":true}\n' "$1" ;;
    skip) printf '{"step":"%s","skip":"%s"}\n' "$1" "$msg" ;;
    *) printf '{"step":"%s","ok":false,"error":"%s"}\n' "$1" "$msg" ;;
  esac
}
log() { echo "$*" >&2; }

# Record i: key-i TAB value-i-<i%50 letters>.
awk -v n=$RECORDS 'BEGIN { for (i = 0; i < n; i++) { v = "value-" i "-"
  for (j = 0; j < i % 50; j++) v = v sprintf("%c", 97 + (i * 31 + j) % 26)
  printf "key-%d\t%s\n", i, v } }' > "$work/records"

fmt='%p\t%o\t%T\t%k\t%s\t%h\n'

# Checks consumed lines (partition, offset, timestamp, key, value, headers): each is a
# record as sent; prints the first problem, if any.
verify() {
  awk -F'\t' -v headers="$HEADERS" '
    NF != 6 { print "malformed line: " $0; exit }
    { if ($4 !~ /^key-[0-9]+$/) { print "unexpected key " $4; exit }
      i = substr($4, 5) + 0; v = "value-" i "-"
      for (j = 0; j < i % 50; j++) v = v sprintf("%c", 97 + (i * 31 + j) % 26)
      if ($5 != v) { print "record " i ": value " $5 ", sent " v; exit }
      if ($6 != headers) { print "record " i ": headers " $6 ", sent " headers; exit }
      if ($3 + 0 <= 0) { print "record " i ": no timestamp"; exit } }' "$@"
}

latest_sum() {
  local args=() p
  for ((p = 0; p < PARTITIONS; p++)); do args+=(-t "$T:$p:-1"); done
  kcat -b "$B" -Q "${args[@]}" 2>>"$work/q.err" | awk '{ s += $NF } END { print s + 0 }'
}

# create_topic
log "== create_topic"
report create_topic skip "kcat has no admin API; the first produce auto-creates the topic"

# produce
log "== produce"
produce() { # seconds, extra -X settings
  local limit=$1
  shift
  timeout "$limit" kcat -b "$B" -P -t "$T" -K '\t' -H origin=weir-compat -H client=kcat \
    -X acks=all "$@" < "$work/records" 2> "$work/produce.err"
}
# 10,000 records take seconds; the short bound is for librdkafka 2.0.2, which after a
# fatal idempotence error can hang in shutdown until killed.
produce 20 -X enable.idempotence=true
rc=$?
uniq -c "$work/produce.err" >&2
produced=$(latest_sum)
if [ $rc -eq 0 ] && [ "$produced" -eq $RECORDS ]; then
  report produce ok
elif [ "$produced" -ne 0 ]; then
  report produce fail "idempotent kcat -P exited $rc and the topic holds $produced of $RECORDS records"
else
  # kcat 2.0.2 sometimes exits 0 after librdkafka's fatal error has purged every record.
  fatal=$(grep -m1 -E 'FATAL|ERROR' "$work/produce.err")
  why="idempotent produce failed: kcat exited $rc, nothing was written${fatal:+: $fatal}"
  log "   $why; producing without idempotence for the steps after this one"
  produce $PATIENCE -X enable.idempotence=false
  produced=$(latest_sum)
  report produce fail "$why (without idempotence the topic holds $produced of $RECORDS records)"
fi
partitions=$(kcat -b "$B" -L -t "$T" 2>/dev/null | grep -c 'partition [0-9]*,')
[ "$partitions" -eq $PARTITIONS ] || log "   the auto-created topic has $partitions partitions, wanted $PARTITIONS"

# consume_commit: half the records through a group, committed on close.
log "== consume_commit"
timeout $PATIENCE kcat -b "$B" -G "$T-g" -X auto.offset.reset=earliest -c $((RECORDS / 2)) -f "$fmt" "$T" \
  > "$work/phase1" 2> "$work/phase1.err"
rc=$?
cat "$work/phase1.err" >&2
n1=$(wc -l < "$work/phase1")
problem=$(verify "$work/phase1")
if [ $rc -ne 0 ]; then report consume_commit fail "kcat -G exited $rc after $n1 records"
elif [ "$n1" -ne $((RECORDS / 2)) ]; then report consume_commit fail "read $n1 records, wanted $((RECORDS / 2))"
elif [ -n "$problem" ]; then report consume_commit fail "$problem"
elif [ -n "$(cut -f4 "$work/phase1" | sort | uniq -d | head -1)" ]; then report consume_commit fail "a record was delivered twice"
else report consume_commit ok; fi

# resume: the group goes on where the commit left it, and reads the rest.
log "== resume"
timeout $PATIENCE kcat -b "$B" -G "$T-g" -X auto.offset.reset=earliest -e -f "$fmt" "$T" \
  > "$work/phase2" 2> "$work/phase2.err"
rc=$?
cat "$work/phase2.err" >&2
n2=$(wc -l < "$work/phase2")
problem=$(verify "$work/phase2")
# Per partition: the first offset read after the restart must follow the last one read before.
gap=$(awk -F'\t' 'NR == FNR { if (!($1 in last) || $2 > last[$1]) last[$1] = $2; next }
  !($1 in first) { first[$1] = $2; want = ($1 in last) ? last[$1] + 1 : 0
    if ($2 != want) { print "partition " $1 ": restarted consumer began at offset " $2 ", committed " want; exit } }' \
  "$work/phase1" "$work/phase2")
both=$(cat "$work/phase1" "$work/phase2" | cut -f4 | sort | uniq -d | head -1)
distinct=$(cat "$work/phase1" "$work/phase2" | cut -f4 | sort -u | wc -l)
if [ $rc -ne 0 ]; then report resume fail "kcat -G -e exited $rc after $n2 records"
elif [ -n "$problem" ]; then report resume fail "$problem"
elif [ -n "$gap" ]; then report resume fail "$gap"
elif [ -n "$both" ]; then report resume fail "$both was read before the commit and again after restart"
elif [ "$distinct" -ne $RECORDS ]; then report resume fail "$distinct distinct records read in all, produced $RECORDS"
else report resume ok; fi

# list_offsets
log "== list_offsets"
cat "$work/phase1" "$work/phase2" | sort -t$'\t' -k1,1n -k2,2n > "$work/all"
list_offsets() {
  local problem="" p earliest latest count ts want got after
  for ((p = 0; p < PARTITIONS; p++)); do
    earliest=$(kcat -b "$B" -Q -t "$T:$p:-2" | awk '{ print $NF }')
    latest=$(kcat -b "$B" -Q -t "$T:$p:-1" | awk '{ print $NF }')
    count=$(awk -F'\t' -v p=$p '$1 == p' "$work/all" | wc -l)
    [ "$earliest" = 0 ] || { echo "partition $p: earliest offset $earliest"; return; }
    [ "$latest" = "$count" ] || { echo "partition $p: latest offset $latest, expected $count"; return; }
    # The timestamp of the partition's middle record; the answer is the first offset
    # with a timestamp at or after it (CreateTime from the producer's clock).
    ts=$(awk -F'\t' -v p=$p '$1 == p' "$work/all" | awk -F'\t' -v m=$((count / 2)) 'NR == m + 1 { print $3 }')
    want=$(awk -F'\t' -v p=$p -v ts="$ts" '$1 == p && $3 >= ts { print $2; exit }' "$work/all")
    got=$(kcat -b "$B" -Q -t "$T:$p:$ts" | awk '{ print $NF }')
    [ "$got" = "$want" ] || { echo "partition $p: offset for timestamp $ts is $got, expected $want"; return; }
    after=$(kcat -b "$B" -Q -t "$T:$p:$((ts + 86400000))" | awk '{ print $NF }')
    [ "$after" = -1 ] || { echo "partition $p: a timestamp after every record gave $after, expected -1"; return; }
  done
}
problem=$(list_offsets 2>&1)
if [ "$(wc -l < "$work/all")" -ne $RECORDS ]; then report list_offsets fail "only $(wc -l < "$work/all") records known"
elif [ -n "$problem" ]; then report list_offsets fail "$problem"
else report list_offsets ok; fi

log "== async_commits"
report async_commits skip "kcat has no commit API: its -G consumer commits through librdkafka's auto-commit"

log "== describe_configs"
report describe_configs skip "kcat has no admin API"
log "== alter_configs"
report alter_configs skip "kcat has no admin API"

log "== log_append_time"
report log_append_time skip "kcat has no admin API to create a topic with message.timestamp.type=LogAppendTime (the playground auto-creates topics with the default CreateTime), nor a way to set a record's timestamp"

# small_fetch: 12 records of 300,000 bytes in each of partitions 0-2 of an auto-created
# topic (its partition 3 stays empty), each record a file (kcat -P sends each file named
# as one message, without a key), read back by one consumer of all partitions with a
# total fetch limit of 1,000,000 bytes; receive.message.max.bytes (the largest response
# librdkafka reads) must exceed fetch.max.bytes by at least 512.
log "== small_fetch"
small_fetch() {
  local big="$T-big" p j files rc
  mkdir -p "$work/big"
  # Record j of partition p: "big-p-j-" and then the alphabet from letter (12p + j) % 26 on.
  awk -v dir="$work/big" 'BEGIN { for (p = 0; p < 3; p++) for (j = 0; j < 12; j++) {
      u = ""; for (k = 0; k < 26; k++) u = u sprintf("%c", 97 + (p * 12 + j + k) % 26)
      v = "big-" p "-" j "-"; while (length(u) < 300000) u = u u
      printf "%s", v substr(u, 1, 300000 - length(v)) > (dir "/" p "-" j); close(dir "/" p "-" j) } }'
  for ((p = 0; p < 3; p++)); do
    files=()
    for ((j = 0; j < 12; j++)); do files+=("$work/big/$p-$j"); done
    timeout $PATIENCE kcat -b "$B" -P -t "$big" -p $p -X acks=all "${files[@]}" 2>> "$work/big.err" ||
      { echo "kcat -P of partition $p's records exited $?: $(tail -1 "$work/big.err")"; return; }
  done
  timeout $PATIENCE kcat -b "$B" -C -t "$big" -o beginning -e -f '%p\t%o\t%S\t%s\n' \
    -X fetch.max.bytes=1000000 -X receive.message.max.bytes=1000512 -X max.partition.fetch.bytes=20000000 \
    > "$work/big.out" 2>> "$work/big.err"
  rc=$?
  cat "$work/big.err" >&2
  [ $rc -eq 0 ] || { echo "kcat -C exited $rc after $(wc -l < "$work/big.out") records: $(tail -1 "$work/big.err")"; return; }
  awk -F'\t' -v dir="$work/big" '
    { p = $1; j = n[p]++
      if (p > 2) { print "a record in partition " p ", which was not produced to"; exit }
      if ($2 != j) { print "partition " p ": record " j " read at offset " $2; exit }
      if ($3 != 300000 || length($4) != 300000) { print "partition " p " offset " j ": " $3 " bytes, sent 300000"; exit }
      f = dir "/" p "-" j; getline want < f; close(f)
      if ($4 != want) { print "partition " p " offset " j ": value differs from the one sent"; exit } }
    END { for (p = 0; p < 3; p++) if (n[p] != 12) { print "partition " p ": read " n[p] + 0 " of 12 records"; exit } }' "$work/big.out"
}
problem=$(small_fetch)
if [ -n "$problem" ]; then report small_fetch fail "$problem"; else report small_fetch ok; fi

log "== delete_records"
report delete_records skip "kcat has no admin API (DeleteRecords is an admin request)"

# group_split: two kcat -G consumers of one group; each one's last assignment, from its
# rebalance messages, must be a non-empty half, together all partitions.
split() { # step assignor
  local group="$T-$1" a b sa sb
  kcat -b "$B" -G "$group" -X partition.assignment.strategy=$2 -o end -f '' "$T" 2> "$work/$1.a" &
  a=$!
  sleep 2
  kcat -b "$B" -G "$group" -X partition.assignment.strategy=$2 -o end -f '' "$T" 2> "$work/$1.b" &
  b=$!
  assigned() { # the partitions a consumer holds, from its log
    awk -v t="$T" '/rebalanced/ {
        n = split($0, parts, t " \\[")
        for (k = 2; k <= n; k++) { q = parts[k] + 0
          if ($0 ~ /incremental revoke|: revoked:/) delete held[q]; else held[q] = 1 }
        if ($0 ~ /: assigned:/) { delete held; for (k = 2; k <= n; k++) held[parts[k] + 0] = 1 } }
      END { for (q in held) print q }' "$1" | sort -n | tr '\n' ' '
  }
  local deadline=$((SECONDS + PATIENCE)) stable=0
  while [ $stable -lt 5 ]; do
    if [ $SECONDS -gt $deadline ]; then
      echo "no split: a has [$sa], b has [$sb]"
      break
    fi
    sleep 1
    sa=$(assigned "$work/$1.a")
    sb=$(assigned "$work/$1.b")
    all=$(printf '%s%s' "$sa" "$sb" | tr ' ' '\n' | grep . | sort -n | uniq | tr '\n' ' ')
    dup=$(printf '%s%s' "$sa" "$sb" | tr ' ' '\n' | grep . | sort -n | uniq -d)
    if [ -n "$sa" ] && [ -n "$sb" ] && [ -z "$dup" ] && [ "$all" = "0 1 2 3 " ]; then
      stable=$((stable + 1))
    else
      stable=0
    fi
  done
  kill -TERM $a $b 2>/dev/null
  wait $a $b 2>/dev/null
  cat "$work/$1.a" "$work/$1.b" >&2
}
log "== group_split"
problem=$(split group_split range,roundrobin)
if [ -n "$problem" ]; then report group_split fail "$problem"; else report group_split ok; fi
log "== group_split_cooperative"
problem=$(split group_split_cooperative cooperative-sticky)
if [ -n "$problem" ]; then report group_split_cooperative fail "$problem"; else report group_split_cooperative ok; fi

log "== delete_topic"
report delete_topic skip "kcat has no admin API"
