package runtimetest

import "testing"

func TestMockLoaderConformance(t *testing.T) { Run(t, MockHarness()) }
