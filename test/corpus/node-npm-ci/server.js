'use strict';

const express = require('express');

const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || '0.0.0.0';

const app = express();
app.get('/health', (req, res) => res.type('text').send('ok\n'));
app.get('/', (req, res) => res.json({ hello: 'world', node: process.version, express: require('express/package.json').version }));

const server = app.listen(PORT, HOST, () => console.log(`listening on http://${HOST}:${PORT}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
