// kafkajs in the compatibility harness. Two roles, whose output run.py checks:
//
//   basic BOOTSTRAP TOPIC COUNT   create TOPIC (3 partitions), produce COUNT keyed records,
//                                 read them back, delete TOPIC ("T", "P", "C", "D")
//   member BOOTSTRAP TOPIC GROUP  a consumer group member: "R partition offset value" per
//                                 record, "A p1,p2,..." for its assignment; commits what it
//                                 read; leaves the group when stdin closes.
const { Kafka, logLevel } = require('kafkajs')

const [role, bootstrap, topic, arg] = process.argv.slice(2)
const kafka = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING, clientId: 'weir-compat' })

async function basic(count) {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true })
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  console.log(`T ${md.topics[0].partitions.length}`)
  // Idempotence keeps each partition in produce order through retries.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const lines = []
  for (let start = 0; start < count; start += 500) {
    const messages = []
    for (let i = start; i < Math.min(count, start + 500); i++) messages.push({ key: `k${i % 30}`, value: `v${i}` })
    const acks = await producer.send({ topic, messages })
    // kafkajs reports the base offset per partition; the batch's records follow in order.
    const next = {}
    for (const a of acks) next[a.partition] = BigInt(a.baseOffset)
    for (const m of messages) {
      const p = kafka_partition(m.key, md.topics[0].partitions.length)
      lines.push(`P ${p} ${next[p]++} ${m.key} ${m.value}`)
    }
  }
  console.log(lines.join('\n'))
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: `${topic}-reader`, maxWaitTimeInMs: 500 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let n = 0
  const done = new Promise(resolve => {
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        process.stdout.write(`C ${partition} ${message.offset} ${message.key.toString()} ${message.value.toString()}\n`)
        if (++n >= count) resolve()
      },
    })
  })
  await Promise.race([done, new Promise(resolve => setTimeout(resolve, 60000))])
  await consumer.disconnect()
  await admin.deleteTopics({ topics: [topic] })
  await admin.disconnect()
  console.log('D')
}

// kafkajs's default partitioner (murmur2 of the key, as the Java client) decides the
// partition; the producer does not return it per message, so it is recomputed here.
const { Partitioners } = require('kafkajs')
const partitioner = Partitioners.DefaultPartitioner()
function kafka_partition(key, n) {
  const partitionMetadata = Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 0 }))
  return partitioner({ topic, partitionMetadata, message: { key } })
}

async function member(group) {
  // kafkajs heartbeats between fetches, so a short fetch wait keeps rebalances prompt.
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000, maxWaitTimeInMs: 500 })
  let assigned = []
  await consumer.connect()
  consumer.on(consumer.events.GROUP_JOIN, e => {
    assigned = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    process.stdout.write(`A ${assigned.join(',')}\n`)
  })
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: true,
    autoCommitInterval: 200,
    eachMessage: async ({ partition, message }) => {
      process.stdout.write(`R ${partition} ${message.offset} ${message.value.toString()}\n`)
    },
  })
  const report = setInterval(() => process.stdout.write(`A ${assigned.join(',')}\n`), 200)
  process.stdin.resume()
  process.stdin.on('end', async () => {
    clearInterval(report)
    await consumer.disconnect()
    process.exit(0)
  })
}

const run = role === 'basic' ? basic(Number(arg)) : member(arg)
run.then(() => { if (role === 'basic') process.exit(0) }).catch(e => { console.log(`E ${e}`); process.exit(1) })
