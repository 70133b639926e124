#!/usr/bin/env node
console.log('vppd');
