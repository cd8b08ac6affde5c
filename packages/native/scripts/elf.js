// Reads the target machine of an ELF file, so a prebuilt binary for the wrong arch is named as such
// instead of failing later with a bare "invalid ELF header".
'use strict';
const fs = require('node:fs');

/** e_machine values (elf.h) of the arches tsbuild ships binaries for, by Node's process.arch name. */
const ELF_MACHINES = { x64: 62, arm64: 183 };

/** The e_machine of an ELF file, or null when the file is not ELF. */
function elfMachine(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const header = Buffer.alloc(20);
    if (fs.readSync(fd, header, 0, 20, 0) < 20 || header.readUInt32BE(0) !== 0x7f454c46) return null;
    return header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
  } finally {
    fs.closeSync(fd);
  }
}

/** The process.arch name of an e_machine value ("machine 40" for others). */
function archOfMachine(machine) {
  const found = Object.entries(ELF_MACHINES).find(([, m]) => m === machine);
  return found ? found[0] : `machine ${machine}`;
}

module.exports = { ELF_MACHINES, elfMachine, archOfMachine };
