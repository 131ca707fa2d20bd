#!/bin/sh
echo listening
