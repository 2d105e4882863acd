// The official Fabric Gateway client for Node (@hyperledger/fabric-gateway), configured only from a
// fedfabric connection profile and identity file (`network.sh profile`).
//
//   node gateway_client.js PROFILE.json IDENTITY.json CHAINCODE OPERATIONS.json
//
// OPERATIONS is a JSON list of {"op": "evaluate"|"submit", "fn": "...", "args": ["..."]}. Prints
// one JSON line per operation: {"ok": true, "result": "...", "status": ..., "block": ...} or
// {"ok": false, "error": "<class>", "message": "...", "details": ["<msp>: <message>", ...]}.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');

async function main() {
    const [profilePath, identityPath, chaincode, opsPath] = process.argv.slice(2);
    const profile = JSON.parse(fs.readFileSync(profilePath, 'utf8'));
    const identity = JSON.parse(fs.readFileSync(identityPath, 'utf8'));
    const operations = JSON.parse(fs.readFileSync(opsPath, 'utf8'));

    const org = profile.organizations[profile.client.organization];
    const peer = profile.peers[org.peers[0]];
    const channel = Object.keys(profile.channels)[0];
    const client = new grpc.Client(new URL(peer.url).host, grpc.credentials.createSsl(Buffer.from(peer.tlsCACerts.pem)),
        { 'grpc.ssl_target_name_override': peer.grpcOptions['ssl-target-name-override'] });
    const gateway = connect({
        client,
        identity: { mspId: org.mspid, credentials: Buffer.from(identity.certificate.pem) },
        signer: signers.newPrivateKeySigner(crypto.createPrivateKey(fs.readFileSync(identity.privateKey.path))),
        hash: hash.sha256,
    });
    try {
        const contract = gateway.getNetwork(channel).getContract(chaincode);
        for (const { op, fn, args } of operations) {
            try {
                if (op === 'evaluate') {
                    const result = await contract.evaluateTransaction(fn, ...args);
                    console.log(JSON.stringify({ ok: true, result: Buffer.from(result).toString() }));
                } else {
                    const submitted = await contract.submitAsync(fn, { arguments: args });
                    const status = await submitted.getStatus();
                    console.log(JSON.stringify({
                        ok: status.successful, result: Buffer.from(submitted.getResult()).toString(),
                        status: status.code, block: Number(status.blockNumber), txId: status.transactionId,
                    }));
                }
            } catch (err) {
                console.log(JSON.stringify({
                    ok: false, error: err.constructor.name, message: err.message,
                    details: (err.details || []).map((d) => `${d.mspId}: ${d.message}`),
                }));
            }
        }
    } finally {
        gateway.close();
        client.close();
    }
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
