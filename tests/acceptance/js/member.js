// A kafkajs consumer group member for the acceptance scenarios: prints "R partition offset
// value" per record and "A p1,p2,..." for its assignment; leaves the group when stdin closes.
const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, topic, group] = process.argv.slice(2)
const kafka = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING, clientId: 'weir-acceptance' })
// kafkajs heartbeats between fetches, so a short fetch wait keeps rebalances prompt.
const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000, maxWaitTimeInMs: 500 })
let assigned = []

async function main() {
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

main().catch(e => { console.error(e); process.exit(1) })
