package config

import (
	"reflect"
	"sort"
)

func reflectValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

func sortStrings(s []string) { sort.Strings(s) }
