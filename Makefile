# tikimail: one Makefile for every program, the tests and the demo installation.
#   make            build every program into bin/
#   make check      build and run the unit tests (seconds)
#   make test       dependencies, unit tests (also under ASan+UBSan), end-to-end tests
#   make SAN=1      the same programs built with ASan+UBSan into build-san/bin/
#   make install PREFIX=/var/tikimail     lay out an installation (DESIGN section 5)
#   make run / make stop                  the demo installation under ./run

CXX ?= g++
PREFIX ?= /var/tikimail
PKGS := libsodium fmt openssl

ifeq ($(SAN),1)
BUILD := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
BUILD := build
SANFLAGS :=
OPT := -O2
endif
BIN := $(BUILD)/bin

# Each function and object in a section of its own, and the linker drops the unused ones:
# static programs shrink by a quarter, and a session maps fewer pages.
CXXFLAGS := -std=c++20 $(OPT) -g -Wall -Wextra -Werror -MMD -MP -I. $(SANFLAGS) \
            -ffunction-sections -fdata-sections $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS := $(SANFLAGS) -Wl,--gc-sections
# fmt's compiled half is common/fmt_impl.cpp, so no program needs libfmt.so.
LDLIBS := $(shell pkg-config --libs libsodium openssl 2>/dev/null) -lresolv

# The programs run once per connection or per message are linked statically: an exec then
# costs no dynamic loading and relocation (about 0.6 ms each, and more with OpenSSL), and
# an idle session maps no shared library. Those that look up users or hosts through glibc's
# NSS (checkpassword, sendmail, mailpasswd, deliver-remote) stay dynamic. The sanitizer
# build links nothing statically (ASan cannot).
STATIC := smtpd queue deliver pop3d pop3d-session tlsd mailq relayctl
ifeq ($(SAN),1)
STATIC :=
endif

# Each folder is one program (its main.cpp); a second program of a folder is name_main.cpp.
FOLDERS := smtpd queue deliver mailpasswd pop3d relayctl tlsd deliver-remote
SECOND := sendmail:queue mailq:queue checkpassword:pop3d pop3d-session:pop3d
# Stores other programs link (DESIGN section 2): program -> folders whose library it needs.
LIBS_smtpd := relayctl
LIBS_checkpassword := relayctl
PROGRAMS := $(FOLDERS) $(foreach p,$(SECOND),$(word 1,$(subst :, ,$(p))))


.SECONDEXPANSION:
src = $(filter-out %_test.cpp %_main.cpp %/main.cpp,$(wildcard $(1)/*.cpp))
obj = $(patsubst %.cpp,$(BUILD)/%.o,$(1))
TESTS := $(wildcard common/*_test.cpp $(FOLDERS:%=%/*_test.cpp))

all: $(PROGRAMS:%=$(BIN)/%)
	@mkdir -p bin && for p in $(PROGRAMS); do ln -sf ../$(BIN)/$$p bin/$$p; done

$(BUILD)/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# Tests build faster at -O1; Catch2's main comes prebuilt from Debian.
$(BUILD)/%_test.o: %_test.cpp
	@mkdir -p $(@D)
	$(CXX) $(filter-out -O2,$(CXXFLAGS)) -O1 $(shell pkg-config --cflags catch2) -c $< -o $@

$(BUILD)/libcommon.a: $(call obj,$(call src,common))
	@rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/lib%.a: $$(call obj,$$(call src,%))
	@rm -f $@ && $(AR) rcs $@ $^

$(BIN)/%: $$(if $$(filter $$*,$(FOLDERS)),$(BUILD)/$$*/main.o $(BUILD)/lib$$*.a,$$(call second_deps,$$*)) \
          $$(foreach d,$$(LIBS_$$*),$(BUILD)/lib$$(d).a) $(BUILD)/libcommon.a
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $(if $(filter $(@F),$(STATIC)),-static) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS)

second_folder = $(word 2,$(subst :, ,$(filter $(1):%,$(SECOND))))
second_deps = $(BUILD)/$(call second_folder,$(1))/$(1)_main.o $(BUILD)/lib$(call second_folder,$(1)).a

$(BUILD)/unit_tests: $(call obj,$(TESTS)) $(FOLDERS:%=$(BUILD)/lib%.a) $(BUILD)/libcommon.a
	$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(BUILD)/libcommon.a -L/usr/lib -lCatch2WithMain $(LDLIBS)

check: deps-build $(BUILD)/unit_tests
	$(BUILD)/unit_tests

deps-build:
	@sh scripts/deps.sh build

test:
	@sh scripts/deps.sh test
	@bash tests/run.sh

install: all
	@sh scripts/install.sh "$(PREFIX)"

run:
	@sh scripts/deps.sh all
	@$(MAKE) --no-print-directory all
	@sh scripts/run.sh

stop:
	@sh scripts/stop.sh

# tikimail against Postfix + Dovecot (bench/README.md); as root. Not part of `make test`.
#   make bench [QUICK=1] [ROUNDS=3] [NOTE="the machine was shared"]
bench:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@python3 bench/run.py --bin $(BIN) $(if $(QUICK),--quick) $(if $(ROUNDS),--rounds $(ROUNDS)) \
	  $(if $(NOTE),--note "$(NOTE)")
.PHONY: bench

clean:
	rm -rf build build-san bin

.PHONY: all check test install run stop clean deps-build
.SECONDARY:
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
