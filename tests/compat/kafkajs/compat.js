// kafkajs in Weir's compatibility scenario.
//
//     NODE_PATH=<cache>/node_modules node compat.js BOOTSTRAP TOPIC
//
// admin for topics, offsets, configs (alterConfigs, which is AlterConfigs: kafkajs has
// no incremental API), committed offsets and deleteTopicRecords; an idempotent producer
// (acks=-1, one request in flight, as kafkajs requires); consumers with subscribe()
// and run() for the groups (kafkajs's one assignor, round robin; it has no
// cooperative-sticky). Prints one JSON line per step for tests/compat/run.py; the
// scenario and its checks are the same as tests/compat/python/scenario.py's.

const { Kafka, logLevel, Partitioners, ConfigResourceTypes } = require('kafkajs')

const PARTITIONS = 4
const RECORDS = 10000
const BASE_TS = 1700000000000
const PATIENCE_MS = 60000 // a bound against hanging, not a timing assertion
const RETENTION_MS = '7200000'
const DEFAULT_RETENTION_MS = '604800000' // Kafka's retention.ms default, 7 days
const ASYNC_COMMITS = 200 // async_commits: offsets 1..200, then 201 awaited
const LOG_APPEND_TS = 1000000 // log_append_time: the timestamp the producer sets
const CLOCK_SLACK_MS = 1000 // the append time may be this far outside the produce
// small_fetch: 12 records of 300,000 bytes in each of 3 partitions, read with a total fetch
// limit of 1,000,000 bytes and a per-partition limit of 20,000,000.
const BIG_PARTITIONS = 3
const BIG_RECORDS = 12
const BIG_SIZE = 300000
const FETCH_MAX_BYTES = 1000000
const PARTITION_FETCH_MAX_BYTES = 20000000
const LOG_APPEND_TIME = 1 // Kafka's timestamp type, as kafkajs's batchContext.timestampType gives it
// delete_records: 10 records in each of 2 partitions; partition 0 loses those before offset
// 4, partition 1 everything (-1 is the high watermark); offset 11 of partition 0 is past it.
const DR_PARTITIONS = 2
const DR_RECORDS = 10
const DR_BEFORE = 4
const HIGH_WATERMARK = -1

const [bootstrap, topic] = process.argv.slice(2)
const kafka = new Kafka({
  clientId: 'weir-compat-kafkajs',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator: () => ({ namespace, level, log }) => {
    const { message, ...extra } = log
    process.stderr.write(`[${namespace}] ${message} ${JSON.stringify(extra)}\n`)
  },
})
const admin = kafka.admin()

class Fail extends Error {}
class NotSupported extends Error {}
function check(cond, message) {
  if (!cond) throw new Fail(message)
}
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function key(i) {
  return Buffer.from(`key-${i}`)
}
function value(i) {
  const prefix = Buffer.from(`value-${i}-`)
  const tail = Buffer.alloc(i % 200)
  for (let j = 0; j < i % 200; j++) tail[j] = (i * 31 + j) % 256
  return Buffer.concat([prefix, tail])
}

async function step(name, body) {
  process.stderr.write(`== ${name}\n`)
  const t0 = Date.now()
  let msg
  try {
    await body()
    msg = { step: name, ok: true }
  } catch (e) {
    if (e instanceof NotSupported) msg = { step: name, skip: e.message }
    else {
      process.stderr.write(`${e.stack}\n`)
      msg = { step: name, ok: false, error: `${e.name}: ${e.message}` }
    }
  }
  process.stdout.write(JSON.stringify(msg) + '\n')
  process.stderr.write(`   ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
}

let acks = new Map() // i -> [partition, offset]
const seen = new Map()
let committed = new Map()

function verify(partition, m) {
  const k = m.key ? m.key.toString() : ''
  check(k.startsWith('key-'), `unexpected key ${k}`)
  const i = parseInt(k.slice(4), 10)
  check(m.value.equals(value(i)), `record ${i}: value differs`)
  const hs = Object.entries(m.headers).map(([h, v]) => `${h}=${v.toString()}`)
  check(JSON.stringify(hs) === JSON.stringify([`seq=${i}`, 'origin=weir-compat']), `record ${i}: headers ${hs}`)
  check(m.timestamp === String(BASE_TS + i), `record ${i}: timestamp ${m.timestamp}, sent ${BASE_TS + i}`)
  const a = acks.get(i)
  const offset = parseInt(m.offset, 10)
  if (a) check(a[0] === partition && a[1] === offset, `record ${i} read at ${partition}/${offset}, producer was acked ${a}`)
  return i
}

async function produce(idempotent) {
  const producer = kafka.producer({
    idempotent,
    maxInFlightRequests: idempotent ? 1 : undefined,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  try {
    // Which partition each record goes to, by the producer's own partitioner, so each
    // record's offset follows from its partition's base offset in the response.
    const partitioner = Partitioners.DefaultPartitioner()
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
    const partitionMetadata = metadata.topics[0].partitions
    const got = new Map()
    const CHUNK = 500
    for (let start = 0; start < RECORDS; start += CHUNK) {
      const messages = []
      for (let i = start; i < Math.min(RECORDS, start + CHUNK); i++) {
        messages.push({
          key: key(i),
          value: value(i),
          headers: { seq: String(i), origin: 'weir-compat' },
          timestamp: String(BASE_TS + i),
        })
      }
      const placed = messages.map(message => partitioner({ topic, partitionMetadata, message }))
      const result = await producer.send({ topic, acks: -1, messages })
      const base = new Map(result.map(r => [r.partition, parseInt(r.baseOffset, 10)]))
      const next = new Map()
      placed.forEach((p, j) => {
        check(base.has(p), `no response for partition ${p}`)
        const n = next.get(p) || 0
        got.set(start + j, [p, base.get(p) + n])
        next.set(p, n + 1)
      })
    }
    return got
  } finally {
    await producer.disconnect()
  }
}

function checkAcks(got) {
  check(got.size === RECORDS, `${got.size} of ${RECORDS} records acknowledged`)
  const byPart = new Map()
  for (const [p, off] of got.values()) {
    if (!byPart.has(p)) byPart.set(p, [])
    byPart.get(p).push(off)
  }
  check(byPart.size === PARTITIONS, `keys landed in partitions ${[...byPart.keys()]}`)
  for (const [p, offs] of byPart) {
    offs.sort((a, b) => a - b)
    offs.forEach((o, j) => check(o === j, `partition ${p}: acked offsets are not dense from 0`))
  }
}

// Runs a group consumer until `enough()` says so; `onRecord(partition, message)`
// returns false to leave a record unprocessed (it will be read again after a restart).
async function consume(group, onRecord, enough) {
  const consumer = kafka.consumer({ groupId: group, retry: { retries: 3 } })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let failure = null
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (failure) return
      try {
        onRecord(partition, message)
      } catch (e) {
        failure = e
      }
    },
  })
  const deadline = Date.now() + PATIENCE_MS
  while (!failure && !enough()) {
    if (Date.now() > deadline) failure = new Fail('timed out reading records')
    await sleep(50)
  }
  return { consumer, failure }
}

// small_fetch's record j of a partition: BIG_SIZE bytes, distinct per record.
function bigValue(partition, j) {
  const v = Buffer.alloc(BIG_SIZE)
  const prefix = Buffer.from(`big-${partition}-${j}-`)
  prefix.copy(v)
  const start = (partition * BIG_RECORDS + j) % 256
  for (let k = prefix.length; k < BIG_SIZE; k++) v[k] = (start + k - prefix.length) % 256
  return v
}

async function waitListed(t) {
  const deadline = Date.now() + PATIENCE_MS
  while (!(await admin.listTopics()).includes(t)) {
    check(Date.now() < deadline, `${t} not listed after create`)
    await sleep(200)
  }
}

// Reads t from the beginning with a consumer of a new group until `count` records came;
// returns [{ partition, message }] in the order read.
async function readRecords(t, group, count, consumerOptions = {}) {
  const consumer = kafka.consumer({ groupId: group, ...consumerOptions })
  const got = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: t, fromBeginning: true })
    await consumer.run({ autoCommit: false, eachMessage: async ({ partition, message }) => { got.push({ partition, message }) } })
    const deadline = Date.now() + PATIENCE_MS
    while (got.length < count) {
      check(Date.now() < deadline, `${t}: read ${got.length} of ${count} records`)
      await sleep(50)
    }
  } finally {
    await consumer.disconnect()
  }
  return got
}

async function committedOffsets(group) {
  const res = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  const out = new Map()
  for (const { partition, offset } of res[0].partitions) {
    if (parseInt(offset, 10) >= 0) out.set(partition, parseInt(offset, 10))
  }
  return out
}

async function topicConfigs() {
  const res = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    includeSynonyms: false,
  })
  return new Map(res.resources[0].configEntries.map(e => [e.configName, e.configValue]))
}

// AlterConfigs: the topic's configs become exactly `configEntries`.
async function alterConfigs(configEntries) {
  return admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries }],
  })
}

async function groupSplit() {
  const group = `${topic}-split-default`
  const assignments = [new Set(), new Set()]
  const consumers = []
  const start = async n => {
    const c = kafka.consumer({ groupId: group })
    c.on(c.events.GROUP_JOIN, e => {
      assignments[n] = new Set(e.payload.memberAssignment[topic] || [])
    })
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({ autoCommit: false, eachMessage: async () => {} })
    consumers.push(c)
  }
  try {
    const deadline = Date.now() + PATIENCE_MS
    await start(0)
    while (assignments[0].size < PARTITIONS) {
      check(Date.now() < deadline, `a lone consumer got ${[...assignments[0]]}`)
      await sleep(100)
    }
    await start(1)
    let stable = 0
    while (stable < 10) {
      const [a, b] = assignments
      check(Date.now() < deadline, `no split: a has ${[...a]}, b has ${[...b]}`)
      const overlap = [...a].some(p => b.has(p))
      const all = new Set([...a, ...b])
      if (a.size && b.size && !overlap && all.size === PARTITIONS) stable++
      else stable = 0
      await sleep(200)
    }
  } finally {
    for (const c of consumers) await c.disconnect()
  }
}

async function main() {
  await admin.connect()
  const parts = [...Array(PARTITIONS).keys()]

  await step('create_topic', async () => {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
    })
    check(created, 'createTopics answered that the topic already existed')
    check((await admin.listTopics()).includes(topic), 'not listed after create')
  })

  await step('produce', async () => {
    let fallback = null
    let got
    try {
      got = await produce(true)
    } catch (e) {
      process.stderr.write(`${e.stack}\n   producing without idempotence for the steps after this one\n`)
      fallback = `idempotent produce failed: ${e.name}: ${e.message}`
      got = await produce(false)
    }
    checkAcks(got)
    acks = got
    if (fallback) throw new Fail(`${fallback} (without idempotence all 10,000 were acknowledged)`)
  })

  await step('consume_commit', async () => {
    const group = `${topic}-g`
    let stopped = false
    const { consumer, failure } = await consume(
      group,
      (partition, m) => {
        if (stopped) return
        const i = verify(partition, m)
        check(!seen.has(i), `record ${i} delivered twice`)
        seen.set(i, [partition, parseInt(m.offset, 10)])
      },
      () => {
        if (seen.size >= RECORDS / 2) stopped = true
        return stopped
      },
    )
    try {
      if (failure) throw failure
      const next = new Map()
      for (const [p, off] of seen.values()) next.set(p, Math.max(next.get(p) || 0, off + 1))
      await consumer.commitOffsets([...next].map(([partition, o]) => ({ topic, partition, offset: String(o) })))
      const back = await committedOffsets(group)
      for (const p of parts) {
        check(back.get(p) === next.get(p), `partition ${p}: committed offset reads back ${back.get(p)}, committed ${next.get(p)}`)
      }
      committed = next
    } finally {
      await consumer.disconnect()
    }
  })

  await step('resume', async () => {
    check(committed.size > 0, 'nothing was committed by consume_commit')
    const first = new Map()
    const again = new Map()
    const { consumer, failure } = await consume(
      `${topic}-g`,
      (partition, m) => {
        const offset = parseInt(m.offset, 10)
        if (!first.has(partition)) first.set(partition, offset)
        const i = verify(partition, m)
        check(!seen.has(i), `record ${i} was read before the commit and again after restart`)
        check(!again.has(i), `record ${i} delivered twice after restart`)
        again.set(i, [partition, offset])
      },
      () => seen.size + again.size >= RECORDS,
    )
    await consumer.disconnect()
    if (failure) throw failure
    for (const [p, off] of first) {
      check(off === (committed.get(p) || 0), `partition ${p}: restarted consumer began at offset ${off}, committed ${committed.get(p) || 0}`)
    }
    for (const [i, po] of again) seen.set(i, po)
  })

  await step('async_commits', async () => {
    // kafkajs has no assign(): the consumer of the new group subscribes, and commits once it
    // has joined (commitOffsets needs a running member). Joining found the coordinator.
    // Each commitOffsets call goes straight to the coordinator's connection, which has no
    // in-flight limit in a consumer, so the 200 calls made without awaiting are all in
    // flight at once, in call order; the commit of 201 is the one awaited.
    const group = `${topic}-async`
    const consumer = kafka.consumer({ groupId: group })
    let joined = false
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true
    })
    await consumer.connect()
    try {
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({ autoCommit: false, eachMessage: async () => {} })
      const deadline = Date.now() + PATIENCE_MS
      while (!joined) {
        check(Date.now() < deadline, 'the consumer did not join its group')
        await sleep(50)
      }
      consumer.pause([{ topic }])
      const before = await committedOffsets(group)
      check(!before.has(0), `a new group has committed offset ${before.get(0)} for partition 0`)
      const pending = []
      for (let o = 1; o <= ASYNC_COMMITS; o++) {
        pending.push(consumer.commitOffsets([{ topic, partition: 0, offset: String(o) }]))
      }
      await consumer.commitOffsets([{ topic, partition: 0, offset: String(ASYNC_COMMITS + 1) }])
      const outcomes = await Promise.allSettled(pending)
      const failed = outcomes.filter(o => o.status === 'rejected')
      check(failed.length === 0, `${failed.length} of the asynchronous commits failed, first: ${failed.length && failed[0].reason}`)
      const back = await committedOffsets(group)
      check(back.get(0) === ASYNC_COMMITS + 1, `after ${ASYNC_COMMITS} commits of 1..${ASYNC_COMMITS} sent without waiting and one of ${ASYNC_COMMITS + 1}, the committed offset reads back ${back.get(0)}`)
    } finally {
      await consumer.disconnect()
    }
    // A new consumer of the group starts partition 0 at the committed offset.
    let first0
    const { consumer: again, failure } = await consume(
      group,
      (partition, m) => {
        if (partition === 0 && first0 === undefined) first0 = parseInt(m.offset, 10)
      },
      () => first0 !== undefined,
    )
    await again.disconnect()
    if (failure) throw failure
    check(first0 === ASYNC_COMMITS + 1, `a new consumer of the group began partition 0 at offset ${first0}, committed ${ASYNC_COMMITS + 1}`)
  })

  await step('list_offsets', async () => {
    const placed = seen.size === RECORDS ? seen : acks
    check(placed.size === RECORDS, `only ${placed.size} records known`)
    const counts = new Map(parts.map(p => [p, 0]))
    const byPart = new Map(parts.map(p => [p, []]))
    for (const [i, [p, off]] of placed) {
      counts.set(p, counts.get(p) + 1)
      byPart.get(p).push([off, i])
    }
    const offsets = await admin.fetchTopicOffsets(topic)
    for (const { partition, low, high } of offsets) {
      check(parseInt(low, 10) === 0, `partition ${partition}: earliest offset ${low}`)
      check(parseInt(high, 10) === counts.get(partition), `partition ${partition}: latest offset ${high}, expected ${counts.get(partition)}`)
    }
    check(offsets.length === PARTITIONS, `offsets for ${offsets.length} partitions`)
    for (const p of parts) {
      const rows = byPart.get(p).sort((a, b) => a[0] - b[0])
      const [off, i] = rows[Math.floor(rows.length / 2)]
      const found = await admin.fetchTopicOffsetsByTimestamp(topic, BASE_TS + i)
      const got = parseInt(found.find(f => f.partition === p).offset, 10)
      check(got === off, `partition ${p}: offset for timestamp ${BASE_TS + i} is ${got}, expected ${off}`)
    }
    // kafkajs answers a timestamp after every record with the latest offset (its
    // documented substitute for Kafka's -1).
    const after = await admin.fetchTopicOffsetsByTimestamp(topic, BASE_TS + RECORDS + 1000)
    for (const { partition, offset } of after) {
      check(parseInt(offset, 10) === counts.get(partition), `a timestamp after every record gave ${offset} for partition ${partition}`)
    }
  })

  await step('describe_configs', async () => {
    const res = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
      includeSynonyms: false,
    })
    const entries = res.resources[0].configEntries
    const policy = entries.find(e => e.configName === 'cleanup.policy')
    check(policy, `cleanup.policy missing from ${entries.length} entries`)
    check(policy.configValue === 'delete', `cleanup.policy is ${policy.configValue}`)
  })

  await step('alter_configs', async () => {
    const res = await alterConfigs([{ name: 'retention.ms', value: RETENTION_MS }])
    check(res.resources.length === 1 && res.resources[0].resourceName === topic,
      `alterConfigs answered for ${JSON.stringify(res.resources)}`)
    let configs = await topicConfigs()
    check(configs.get('retention.ms') === RETENTION_MS, `after alterConfigs retention.ms=${RETENTION_MS} it is ${configs.get('retention.ms')}`)
    let refused = null
    try {
      await alterConfigs([{ name: 'retention.ms', value: 'soon' }])
    } catch (e) {
      refused = e
    }
    check(refused, 'alterConfigs retention.ms=soon was accepted')
    check(refused.name === 'KafkaJSProtocolError' && (refused.type === 'INVALID_CONFIG' || refused.code === 40),
      `alterConfigs retention.ms=soon failed with ${refused.name} ${refused.type} (code ${refused.code}): ${refused.message}, expected INVALID_CONFIG`)
    configs = await topicConfigs()
    check(configs.get('retention.ms') === RETENTION_MS, `after the refused alterConfigs retention.ms is ${configs.get('retention.ms')}, was ${RETENTION_MS}`)
    await alterConfigs([])
    configs = await topicConfigs()
    check(configs.get('retention.ms') === DEFAULT_RETENTION_MS,
      `after alterConfigs naming no config retention.ms is ${configs.get('retention.ms')}, expected the default ${DEFAULT_RETENTION_MS}`)
  })

  await step('log_append_time', async () => {
    const lat = `${topic}-lat`
    await admin.createTopics({
      topics: [{ topic: lat, numPartitions: 1, replicationFactor: 1,
        configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }],
      waitForLeaders: true,
    })
    await waitListed(lat)
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    const before = Date.now()
    let res
    try {
      res = await producer.send({ topic: lat, acks: -1,
        messages: [{ partition: 0, key: 'lat', value: 'log-append-time', timestamp: String(LOG_APPEND_TS) }] })
    } finally {
      await producer.disconnect()
    }
    const after = Date.now()
    check(res.length === 1 && res[0].partition === 0 && res[0].baseOffset === '0', `the record was acknowledged as ${JSON.stringify(res)}`)
    const [{ message: m }] = await readRecords(lat, `${lat}-reader`, 1)
    // kafkajs gives each message its batch's context, whose timestampType comes from the
    // batch attributes (0 CreateTime, 1 LogAppendTime).
    const tsType = m.batchContext && m.batchContext.timestampType
    check(tsType === LOG_APPEND_TIME, `record read with timestamp type ${tsType}, expected LogAppendTime (${LOG_APPEND_TIME})`)
    const ts = parseInt(m.timestamp, 10)
    check(ts !== LOG_APPEND_TS, `record read with the producer's timestamp ${LOG_APPEND_TS}, not the append time`)
    check(before - CLOCK_SLACK_MS <= ts && ts <= after + CLOCK_SLACK_MS, `record read with timestamp ${ts}, produced between ${before} and ${after}`)
    check(res[0].logAppendTime === m.timestamp, `the producer's acknowledgement gave logAppendTime ${res[0].logAppendTime}, the record reads ${m.timestamp}`)
  })

  await step('small_fetch', async () => {
    const big = `${topic}-big`
    await admin.createTopics({ topics: [{ topic: big, numPartitions: BIG_PARTITIONS, replicationFactor: 1 }], waitForLeaders: true })
    await waitListed(big)
    // kafkajs puts each send's records for a partition in one batch, and a batch must fit
    // Kafka's max.message.bytes (1 MiB): three records per partition per send.
    const PER_SEND = 3
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    try {
      for (let j0 = 0; j0 < BIG_RECORDS; j0 += PER_SEND) {
        const messages = []
        for (let p = 0; p < BIG_PARTITIONS; p++) {
          for (let j = j0; j < j0 + PER_SEND; j++) messages.push({ partition: p, key: `big-${p}-${j}`, value: bigValue(p, j) })
        }
        const res = await producer.send({ topic: big, acks: -1, messages })
        for (let p = 0; p < BIG_PARTITIONS; p++) {
          const r = res.find(x => x.partition === p)
          check(r && r.baseOffset === String(j0), `records big-${p}-${j0}.. were acknowledged as ${JSON.stringify(r)}`)
        }
      }
    } finally {
      await producer.disconnect()
    }
    const got = await readRecords(big, `${big}-reader`, BIG_RECORDS * BIG_PARTITIONS,
      { maxBytes: FETCH_MAX_BYTES, maxBytesPerPartition: PARTITION_FETCH_MAX_BYTES })
    for (let p = 0; p < BIG_PARTITIONS; p++) {
      const mine = got.filter(r => r.partition === p).map(r => r.message)
      const offsets = mine.map(m => parseInt(m.offset, 10))
      check(JSON.stringify(offsets) === JSON.stringify([...Array(BIG_RECORDS).keys()]),
        `partition ${p}: read offsets ${offsets}, expected 0..${BIG_RECORDS - 1}`)
      mine.forEach((m, j) => {
        check(m.value && m.value.length === BIG_SIZE, `partition ${p} offset ${j}: ${m.value ? m.value.length : 0} bytes, sent ${BIG_SIZE}`)
        check(m.value.equals(bigValue(p, j)), `partition ${p} offset ${j}: value differs from the one sent`)
      })
    }
  })

  await step('delete_records', async () => {
    const dr = `${topic}-dr`
    await admin.createTopics({ topics: [{ topic: dr, numPartitions: DR_PARTITIONS, replicationFactor: 1 }], waitForLeaders: true })
    await waitListed(dr)
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    try {
      const messages = []
      for (let p = 0; p < DR_PARTITIONS; p++) {
        for (let j = 0; j < DR_RECORDS; j++) messages.push({ partition: p, key: `dr-${p}-${j}`, value: `dr-value-${p}-${j}` })
      }
      const res = await producer.send({ topic: dr, acks: -1, messages })
      for (let p = 0; p < DR_PARTITIONS; p++) {
        const r = res.find(x => x.partition === p)
        check(r && r.baseOffset === '0', `records dr-${p}-0.. were acknowledged as ${JSON.stringify(r)}`)
      }
    } finally {
      await producer.disconnect()
    }
    // deleteTopicRecords resolves to nothing: kafkajs reads the response only for its
    // partitions' errors, so the low watermarks are the ones fetchTopicOffsets gives.
    await admin.deleteTopicRecords({ topic: dr, partitions: [
      { partition: 0, offset: String(DR_BEFORE) }, { partition: 1, offset: String(HIGH_WATERMARK) }] })
    // [earliest, latest] of each partition, by ListOffsets
    const bounds = async () => {
      const offsets = await admin.fetchTopicOffsets(dr)
      return [...Array(DR_PARTITIONS).keys()].map(p => {
        const o = offsets.find(x => x.partition === p)
        return o ? [parseInt(o.low, 10), parseInt(o.high, 10)] : null
      })
    }
    const after = await bounds()
    const want = [[DR_BEFORE, DR_RECORDS], [DR_RECORDS, DR_RECORDS]]
    check(JSON.stringify(after) === JSON.stringify(want),
      `after deleteTopicRecords before offset ${DR_BEFORE} of partition 0 and ${HIGH_WATERMARK} (the high watermark) of partition 1 ` +
      `the [earliest, latest] offsets of partitions 0 and 1 are ${JSON.stringify(after)}, expected ${JSON.stringify(want)}`)
    // kafkajs has no assign(): a consumer of a new group reads the topic from the beginning;
    // partition 1 holds nothing any more.
    const got = await readRecords(dr, `${dr}-reader`, DR_RECORDS - DR_BEFORE)
    const read = got.map(({ partition, message }) => [partition, parseInt(message.offset, 10)])
    const wantRead = []
    for (let j = DR_BEFORE; j < DR_RECORDS; j++) wantRead.push([0, j])
    check(JSON.stringify(read) === JSON.stringify(wantRead),
      `a consumer from the beginning read [partition, offset] ${JSON.stringify(read)}, expected partition 0's offsets ${DR_BEFORE}..${DR_RECORDS - 1}`)
    for (const { message: m } of got) {
      check(m.key.toString() === `dr-0-${m.offset}` && m.value.toString() === `dr-value-0-${m.offset}`,
        `partition 0 offset ${m.offset}: read ${m.key}=${m.value}`)
    }
    let refused = null
    try {
      await admin.deleteTopicRecords({ topic: dr, partitions: [{ partition: 0, offset: String(DR_RECORDS + 1) }] })
    } catch (e) {
      refused = e
    }
    check(refused, `deleteTopicRecords before offset ${DR_RECORDS + 1} of partition 0, past its high watermark ${DR_RECORDS}, was accepted`)
    // kafkajs's retrier gives up on the non-retriable KafkaJSDeleteTopicRecordsError, which
    // names each partition's error, by throwing a KafkaJSNonRetriableError caused by it.
    const cause = refused.cause || refused
    const errs = (cause.partitions || []).map(({ partition, error }) => `${partition}: ${error && error.type}`)
    check(cause.name === 'KafkaJSDeleteTopicRecordsError' && errs.length === 1 && errs[0] === '0: OFFSET_OUT_OF_RANGE',
      `deleteTopicRecords before offset ${DR_RECORDS + 1} of partition 0 (high watermark ${DR_RECORDS}) failed with ` +
      `${refused.name}: ${refused.message} (cause ${cause.name} [${errs}]), expected OFFSET_OUT_OF_RANGE for partition 0`)
    const [last] = await bounds()
    check(last[0] === DR_BEFORE, `after the refused deleteTopicRecords partition 0's earliest offset is ${last[0]}, was ${DR_BEFORE}`)
  })

  await step('group_split', groupSplit)
  await step('group_split_cooperative', async () => {
    throw new NotSupported('kafkajs has no cooperative-sticky assignor')
  })

  await step('delete_topic', async () => {
    await admin.deleteTopics({ topics: [topic], timeout: 30000 })
    const deadline = Date.now() + PATIENCE_MS
    while ((await admin.listTopics()).includes(topic)) {
      check(Date.now() < deadline, `${topic} still listed after delete`)
      await sleep(200)
    }
  })
  await admin.disconnect()
}

main().then(
  () => process.exit(0),
  e => {
    process.stderr.write(`${e.stack}\n`)
    process.exit(1)
  },
)
