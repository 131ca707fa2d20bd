#!/bin/sh
echo talking
